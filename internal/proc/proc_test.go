package proc

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary plays the app when TEND_PROC_APP is set.
func TestMain(m *testing.M) {
	switch os.Getenv("TEND_PROC_APP") {
	case "":
		os.Exit(m.Run())
	case "exit3":
		fmt.Println("hello")
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Minute)
	case "tree":
		// A child in our group and a grandchild that leaves it with setsid.
		for _, setsid := range []bool{false, true} {
			c := exec.Command(os.Args[0])
			c.Env = append(os.Environ(), "TEND_PROC_APP=sleep")
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
			if err := c.Start(); err != nil {
				panic(err)
			}
			fmt.Println(c.Process.Pid)
		}
		time.Sleep(time.Minute)
	}
	os.Exit(0)
}

var (
	reaperOnce sync.Once
	reaper     *Reaper
)

func testReaper(t *testing.T) *Reaper {
	reaperOnce.Do(func() {
		var err error
		reaper, err = NewReaper(slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
	})
	return reaper
}

func startApp(t *testing.T, mode string) (int, <-chan Exit, *Holder) {
	t.Helper()
	p, err := NewForkExec(testReaper(t), nil).Start(Cmd{
		Argv: []string{os.Args[0]},
		Env:  append(os.Environ(), "TEND_PROC_APP="+mode),
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	ch := make(chan Exit, 1)
	go func() { <-p.Done(); ch <- p.Exit() }()
	t.Cleanup(func() {
		unix.Kill(-pid, unix.SIGKILL)
		p.Holder().Close()
	})
	return pid, ch, p.Holder()
}

func readLines(t *testing.T, fd, n int) []string {
	t.Helper()
	var buf bytes.Buffer
	b := make([]byte, 4096)
	for strings.Count(buf.String(), "\n") < n {
		k, err := unix.Read(fd, b)
		if k <= 0 || err != nil {
			break
		}
		buf.Write(b[:k])
	}
	return strings.Fields(buf.String())
}

func TestExitCodeAndOutput(t *testing.T) {
	pid, ch, h := startApp(t, "exit3")
	if got := readLines(t, h.Fd(KindStdout), 1); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("stdout: %q", got)
	}
	select {
	case e := <-ch:
		if e.Pid != pid || e.Code != 3 || e.Signal != 0 {
			t.Fatalf("exit: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit reported")
	}
}

func TestSignalExitAndGroup(t *testing.T) {
	pid, ch, _ := startApp(t, "sleep")
	st, err := ReadStat(pid)
	if err != nil || st.Pgid != pid {
		t.Fatalf("the app must lead its own process group: pgid %d, err %v", st.Pgid, err)
	}
	unix.Kill(pid, unix.SIGTERM)
	e := <-ch
	if e.Signal != unix.SIGTERM || e.Code != -1 {
		t.Fatalf("exit: %+v", e)
	}
}

func TestTreeFindsEscapedDescendants(t *testing.T) {
	pid, ch, h := startApp(t, "tree")
	kids := readLines(t, h.Fd(KindStdout), 2)
	if len(kids) != 2 {
		t.Fatalf("children: %q", kids)
	}
	var want []int
	for _, k := range kids {
		p, _ := strconv.Atoi(k)
		want = append(want, p)
	}
	t.Cleanup(func() { SignalTree(0, want, unix.SIGKILL) })
	tree := Tree(pid, pid)
	for _, w := range want {
		if !slices.Contains(tree, w) {
			t.Fatalf("Tree(%d) = %v, misses %d", pid, tree, w)
		}
	}
	SignalTree(pid, tree, unix.SIGKILL)
	<-ch
	if !WaitGone(pid, tree, 5*time.Second) {
		t.Fatal("tree still alive after SIGKILL")
	}
	// The setsid grandchild was re-parented to us (subreaper) and reaped.
	if o := Orphans(nil); len(o) != 0 {
		t.Fatalf("orphans left: %v", o)
	}
}

func TestOrphansAreFound(t *testing.T) {
	pid, ch, h := startApp(t, "tree")
	kids := readLines(t, h.Fd(KindStdout), 2)
	unix.Kill(pid, unix.SIGKILL)
	<-ch
	deadline := time.Now().Add(5 * time.Second)
	var o []int
	for time.Now().Before(deadline) {
		if o = Orphans(nil); len(o) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(o) != 2 {
		t.Fatalf("orphans %v, want the 2 children %v", o, kids)
	}
	SignalTree(0, o, unix.SIGKILL)
	if !WaitGone(0, o, 5*time.Second) {
		t.Fatal("orphans survived SIGKILL")
	}
}

func TestStartErrors(t *testing.T) {
	_, err := NewForkExec(testReaper(t), nil).Start(Cmd{Argv: []string{"/nonexistent/binary"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/binary") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseStat(t *testing.T) {
	line := []byte("42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 250 18446744073709551615")
	s, err := parseStat(line)
	if err != nil || s.Pid != 42 || s.PPid != 1 || s.Pgid != 42 || s.CPUTicks != 10 || s.StartTicks != 12345 || s.RSSPages != 250 || s.State != 'S' {
		t.Fatalf("%+v %v", s, err)
	}
	// The sampler parses every process's stat at each tick: 1,000 apps made bytes.Fields
	// allocate 1.3 MB a tick.
	if n := testing.AllocsPerRun(100, func() { parseStat(line) }); n != 0 {
		t.Fatalf("parseStat allocates %v times per call; want none", n)
	}
	if _, err := parseStat([]byte("42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000")); err == nil {
		t.Fatal("a stat without field 24 must be refused")
	}
}
