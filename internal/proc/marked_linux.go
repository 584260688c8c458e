package proc

import (
	"bytes"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// MarkVar is the variable every process of a run carries, from its start, in its environment:
// a process that left the run's tree (setsid after a double fork) still has it, so stop and
// delete find it (Marked) where the tree and the process group cannot.
const MarkVar = "TEND_RUN"

// Marked is every process (but this one) whose initial environment has MarkVar=mark, from a
// scan of /proc/<pid>/environ (the processes this user may read) begun after the call: a few
// milliseconds for a few hundred processes. Callers that come during a scan share the next one,
// so a `stop all` of many apps reads /proc a few times, not once an app.
func Marked(mark string) []int {
	if mark == "" {
		return nil
	}
	return slices.Clone(marks.get(scanMarks)[mark])
}

// marks is the last scan of the marks, shared by concurrent callers.
var marks sharedScan[map[string][]int]

// scanMarks reads every readable process's mark.
func scanMarks() map[string][]int {
	out := map[string][]int{}
	d, err := os.Open("/proc")
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	self := os.Getpid()
	buf := make([]byte, 64<<10)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		fd, err := unix.Open("/proc/"+n+"/environ", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone, or another user's
		}
		var env []byte
		for {
			k, err := unix.Read(fd, buf)
			if k <= 0 || err != nil {
				break
			}
			env = append(env, buf[:k]...)
		}
		unix.Close(fd)
		if m := markIn(env); m != "" {
			out[m] = append(out[m], pid)
		}
	}
	return out
}

// RunMark is the mark in pid's environment, "" when it has none (or cannot be read).
func RunMark(pid int) string {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	return markIn(env)
}

// markIn is the mark in an environment block (NUL-separated KEY=VALUE), "" when it has none.
func markIn(env []byte) string {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(MarkVar+"=")); ok {
			return string(v)
		}
	}
	return ""
}
