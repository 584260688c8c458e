package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Stat is what tend reads from /proc/<pid>/stat.
type Stat struct {
	Pid, PPid, Pgid int
	State           byte
	CPUTicks        uint64 // utime + stime, in clock ticks
	StartTicks      uint64 // start time after boot, in clock ticks: with the pid, an identity
	RSSPages        int64
}

// ReadStat parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	var buf [1024]byte
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stat{}, err
	}
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil {
		return Stat{}, err
	}
	return parseStat(buf[:n])
}

var errBadStat = errors.New("malformed /proc stat")

const space = " \t\n\v\f\r"

func parseStat(b []byte) (Stat, error) {
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	open := bytes.IndexByte(b, '(')
	if i < 0 || open < 0 || open > i || i+2 >= len(b) {
		return Stat{}, errBadStat
	}
	pid, _ := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	// Field 3 (state) onwards, split on spaces without allocating: the sampler reads every
	// process's stat at each tick.
	var f [22][]byte // fields 3 to 24
	n, rest := 0, b[i+2:]
	for n < len(f) {
		rest = bytes.TrimLeft(rest, space)
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, space)
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
		n++
	}
	if n < len(f) {
		return Stat{}, errBadStat
	}
	num := func(k int) uint64 { v, _ := strconv.ParseUint(string(f[k-3]), 10, 64); return v }
	s := Stat{
		Pid:        pid,
		State:      f[0][0],
		PPid:       int(num(4)),
		Pgid:       int(num(5)),
		CPUTicks:   num(14) + num(15),
		StartTicks: num(22),
	}
	rss, _ := strconv.ParseInt(string(f[24-3]), 10, 64)
	s.RSSPages = rss
	return s, nil
}

// stats is the last scan of every process's stat, shared by concurrent callers.
var stats sharedScan[[]Stat]

// AllStats reads the stat of every process on the machine, in a scan that began after the call:
// a process born before the call is in it (a scan begun earlier, even a moment, might miss the
// child an app just forked). Callers that arrive during a scan share the next one. The result is
// shared and must not be modified.
func AllStats() []Stat {
	return stats.get(func() []Stat { return readAllStats(nil) })
}

func readAllStats(out []Stat) []Stat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	if cap(out) < len(names) {
		out = make([]Stat, 0, len(names))
	}
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if s, err := ReadStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Tree returns the pids of root's process group and of every descendant of root, including
// those that left the group with setsid (not root itself). It must be taken while root is
// alive: once root dies its orphans are re-parented and the link is gone.
func Tree(root, pgid int) []int {
	stats := AllStats()
	children := map[int][]int{}
	seen := map[int]bool{root: true}
	var out []int
	for _, s := range stats {
		children[s.PPid] = append(children[s.PPid], s.Pid)
		if pgid > 0 && s.Pgid == pgid && !seen[s.Pid] {
			seen[s.Pid] = true
			out = append(out, s.Pid)
		}
	}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// SignalTree sends sig to the process group pgid and to every pid in extra.
func SignalTree(pgid int, extra []int, sig unix.Signal) {
	if pgid > 0 {
		_ = unix.Kill(-pgid, sig)
	}
	for _, p := range extra {
		_ = unix.Kill(p, sig)
	}
}

// Alive reports whether any member of group pgid, or any of the pids, still exists. Zombies in
// the group are not special-cased: their parent is either a live member (so the group is alive
// anyway) or us, and our reaper collects them within milliseconds.
func Alive(pgid int, pids []int) bool {
	if pgid > 0 && unix.Kill(-pgid, 0) == nil {
		return true
	}
	for _, p := range pids {
		if s, err := ReadStat(p); err == nil && s.State != 'Z' {
			return true
		}
	}
	return false
}

// WaitGone polls until Alive is false or the deadline passes; it reports whether all are gone.
func WaitGone(pgid int, pids []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !Alive(pgid, pids) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ClockTicks is the kernel's USER_HZ, which is 100 on every Linux that Go supports.
const ClockTicks = 100

// PageSize is the memory page size.
var PageSize = int64(os.Getpagesize())

// Orphans returns the live processes re-parented to this process (as subreaper or PID 1) whose
// pid is not in known: what apps left behind when they died.
func Orphans(known map[int]bool) []int { return ChildrenOf(os.Getpid(), known) }

// ChildrenOf returns the live children of parent whose pid is not in known.
func ChildrenOf(parent int, known map[int]bool) []int {
	var out []int
	for _, s := range readAllStats(nil) { // fresh: the shared snapshot may predate a death
		if s.PPid == parent && s.State != 'Z' && !known[s.Pid] {
			out = append(out, s.Pid)
		}
	}
	return out
}

// StartedAt is the wall-clock time a process started StartTicks after boot (zero if unknown):
// the boot time from /proc/stat, plus the ticks at USER_HZ (100 on every Linux tend runs on).
func StartedAt(startTicks uint64) time.Time {
	bt := bootTime()
	if bt.IsZero() {
		return bt
	}
	return bt.Add(time.Duration(startTicks) * (time.Second / 100))
}

// boot caches /proc/stat's btime for a minute: the sampler asks for every new process, and the
// file is a few KB. The kernel derives btime from the wall clock, so it is read again now and
// then to follow a clock that was set.
var boot struct {
	mu   sync.Mutex
	at   time.Time
	read time.Time
}

func bootTime() time.Time {
	boot.mu.Lock()
	defer boot.mu.Unlock()
	if !boot.at.IsZero() && time.Since(boot.read) < time.Minute {
		return boot.at
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}
			}
			boot.at, boot.read = time.Unix(sec, 0), time.Now()
			return boot.at
		}
	}
	return time.Time{}
}

// Environ reads a process's environment as it was at exec (nil if unreadable).
func Environ(pid int) map[string]string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}
