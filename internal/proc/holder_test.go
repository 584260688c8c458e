package proc

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestHolderOwnsBorrowsAndCloses(t *testing.T) {
	before := openFds(t)
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHolder("api", 2, true, []int{sock})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.ChildFiles()); got != 5 { // stdin, stdout, stderr, socket, ipc
		t.Fatalf("%d child fds", got)
	}
	if IPCChildFd(1) != 4 {
		t.Fatal("the IPC fd comes after the listening sockets")
	}
	h.CloseChildEnds()
	h.SetProcess(1234, 99, -1)
	m := h.Manifest()
	want := []Kind{KindStdin, KindStdout, KindStderr, KindSocket, KindIPC}
	if len(m) != len(want) {
		t.Fatalf("manifest %+v", m)
	}
	for i, e := range m {
		if e.Kind != want[i] || e.App != "api" || e.Instance != 2 || e.Pid != 1234 || e.StartTick != 99 {
			t.Errorf("entry %d: %+v", i, e)
		}
		if fl, err := unix.FcntlInt(uintptr(e.Fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: fd %d is not CLOEXEC (%v)", e.Name, e.Fd, err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back []Entry
	if err := json.Unmarshal(b, &back); err != nil || len(back) != len(m) || back[3] != m[3] {
		t.Fatalf("JSON round trip: %s", b)
	}
	// A borrowed dup outlives the holder: a reader finishes what the pipe holds.
	fd, err := h.Borrow(KindStdout)
	if err != nil || fd == h.Fd(KindStdout) {
		t.Fatalf("borrow: %d, %v", fd, err)
	}
	if !h.Keep("socket:x", KindSocket, fd) || !h.Keep("socket:x", KindSocket, fd) {
		t.Fatal("keep")
	}
	if n := len(h.Manifest()); n != 6 {
		t.Fatalf("keep of one name twice holds %d fds, want 6", n)
	}
	h.Release(KindStdin)
	if h.Fd(KindStdin) != -1 {
		t.Fatal("stdin still held")
	}
	h.Close()
	h.Close()
	if _, err := h.Borrow(KindStdout); err == nil {
		t.Fatal("borrow after close")
	}
	if h.Keep("socket:y", KindSocket, fd) {
		t.Fatal("keep after close")
	}
	unix.Close(fd)
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open, %d before", after, before)
	}
}

func TestAdoptAndStop(t *testing.T) {
	f := NewForkExec(testReaper(t), nil)
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "TEND_PROC_APP=sleep")
	c.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	t.Cleanup(func() { unix.Kill(-pid, unix.SIGKILL) })
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Adopt(pid, st.StartTicks+1, nil); err == nil {
		t.Fatal("adopted a process whose start time differs")
	}
	p, err := f.Adopt(pid, st.StartTicks, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Holder().Close()
	if p.Holder().Fd(KindPidfd) < 0 {
		t.Error("no pidfd held")
	}
	esc, err := p.Stop(unix.SIGTERM, 5*time.Second, true)
	if err != nil || esc {
		t.Fatalf("stop: escalated %v, %v", esc, err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no exit seen")
	}
	if e := p.Exit(); e.Pid != pid {
		t.Fatalf("exit %+v", e)
	}
	if _, err := f.Adopt(pid, st.StartTicks, nil); err == nil {
		t.Fatal("adopted a process that is gone")
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	p, err := NewForkExec(testReaper(t), nil).Start(Cmd{
		Argv: []string{"/bin/sh", "-c", "trap '' TERM; echo up; while :; do sleep 1; done"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Holder().Close()
	if got := readLines(t, p.Holder().Fd(KindStdout), 1); len(got) != 1 {
		t.Fatalf("%q", got)
	}
	esc, err := p.Stop(unix.SIGTERM, 100*time.Millisecond, true)
	if err != nil || !esc {
		t.Fatalf("escalated %v, %v", esc, err)
	}
	if e := p.Exit(); e.Signal != unix.SIGKILL {
		t.Fatalf("exit %+v", e)
	}
	// SIGKILL was sent to the whole group; its last members are reaped a moment later.
	if !WaitGone(p.Pid(), nil, 5*time.Second) {
		t.Fatal("the group outlived SIGKILL")
	}
	if err := p.Signal(unix.SIGTERM); err == nil {
		t.Fatal("signal to a gone process")
	}
}

// A real run's holder: what ForkExec creates for a process given a listening socket and an IPC
// channel (docs/architecture.md shows this test's output).
func TestManifestOfARealRun(t *testing.T) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewForkExec(testReaper(t), nil).Start(Cmd{
		Argv: []string{os.Args[0]}, Env: append(os.Environ(), "TEND_PROC_APP=sleep"),
		IPC: true, Listen: []int{sock}, App: "web", Instance: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Holder().Close()
	defer unix.Kill(-p.Pid(), unix.SIGKILL)
	m := p.Holder().Manifest()
	kinds := []Kind{KindStdin, KindStdout, KindStderr, KindSocket, KindIPC, KindPidfd}
	if len(m) != len(kinds) {
		t.Fatalf("manifest %+v", m)
	}
	for i, e := range m {
		if e.Kind != kinds[i] || e.Pid != p.Pid() || e.StartTick != p.StartTick() || e.StartTick == 0 {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	t.Logf("%s", b)
}
