package keeper

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/proc"
)

func pair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// pipes makes n pipes; the read ends go in the manifest, the write ends are returned.
func pipes(t *testing.T, n int) ([]proc.Entry, []int) {
	t.Helper()
	var entries []proc.Entry
	var writers []int
	for i := range n {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, proc.Entry{Name: fmt.Sprintf("stdout-%d", i), Kind: proc.KindStdout, Fd: p[0], App: "a", Pid: 1000 + i})
		writers = append(writers, p[1])
	}
	t.Cleanup(func() {
		for i := range entries {
			unix.Close(entries[i].Fd)
			unix.Close(writers[i])
		}
	})
	return entries, writers
}

// 600 fds cross in three batches, in order, each the same pipe as the one sent.
func TestSendAndReceiveManyFds(t *testing.T) {
	a, b := pair(t)
	before := openFds(t)
	sent, writers := pipes(t, 600)
	errc := make(chan error, 1)
	go func() { errc <- Send(a, sent) }()
	got, err := Receive(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) {
		t.Fatalf("%d entries, sent %d", len(got), len(sent))
	}
	for i, e := range got {
		if e.Name != sent[i].Name || e.Pid != sent[i].Pid || e.Fd == sent[i].Fd {
			t.Fatalf("entry %d: %+v, sent %+v", i, e, sent[i])
		}
		if fl, _ := unix.FcntlInt(uintptr(e.Fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
			t.Fatalf("received fd %d is not CLOEXEC", e.Fd)
		}
		msg := []byte(e.Name)
		if _, err := unix.Write(writers[i], msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := unix.Read(e.Fd, buf)
		if err != nil || string(buf[:n]) != e.Name {
			t.Fatalf("fd %d reads %q, %v: not the pipe of %s", e.Fd, buf[:n], err, e.Name)
		}
		unix.Close(e.Fd)
	}
	if err := CheckPeer(b); err != nil {
		t.Fatal(err)
	}
	for _, e := range sent {
		unix.Close(e.Fd)
	}
	for _, w := range writers {
		unix.Close(w)
	}
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open, %d before", after, before)
	}
}

func writeHeader(t *testing.T, c *net.UnixConn, version, n int) {
	t.Helper()
	b, _ := json.Marshal(header{Version: version, Entries: make([]proc.Entry, n)})
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// Whatever is wrong is refused, and every fd received before is closed again.
func TestReceiveRefuses(t *testing.T) {
	before := openFds(t)
	t.Run("another version", func(t *testing.T) {
		a, b := pair(t)
		writeHeader(t, a, Version+1, 0)
		if _, err := Receive(b); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("fewer fds than the manifest lists", func(t *testing.T) {
		a, b := pair(t)
		sent, _ := pipes(t, 2)
		writeHeader(t, a, Version, 3)
		if _, _, err := a.WriteMsgUnix([]byte{2}, unix.UnixRights(sent[0].Fd, sent[1].Fd), nil); err != nil {
			t.Fatal(err)
		}
		a.CloseWrite()
		if _, err := Receive(b); err == nil || !strings.Contains(err.Error(), "after 2 of 3") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("more fds than the manifest lists", func(t *testing.T) {
		a, b := pair(t)
		sent, _ := pipes(t, 3)
		writeHeader(t, a, Version, 2)
		if _, _, err := a.WriteMsgUnix([]byte{3}, unix.UnixRights(sent[0].Fd, sent[1].Fd, sent[2].Fd), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := Receive(b); err == nil || !strings.Contains(err.Error(), "lists 2 and 3 came") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("truncated control data", func(t *testing.T) {
		recvFds = 2
		defer func() { recvFds = maxFds }()
		a, b := pair(t)
		sent, _ := pipes(t, 5)
		errc := make(chan error, 1)
		go func() { errc <- Send(a, sent) }()
		if _, err := Receive(b); err == nil || !strings.Contains(err.Error(), "MSG_CTRUNC") {
			t.Fatalf("err = %v", err)
		}
		<-errc
	})
	t.Run("garbage", func(t *testing.T) {
		a, b := pair(t)
		a.Write([]byte{0, 0, 0, 3, '{', 'x', '}'})
		if _, err := Receive(b); err == nil {
			t.Fatal("a manifest that is not JSON was taken")
		}
		a2, b2 := pair(t)
		a2.Write([]byte{0xff, 0xff, 0xff, 0xff})
		if _, err := Receive(b2); err == nil || !strings.Contains(err.Error(), "over the limit") {
			t.Fatalf("err = %v", err)
		}
	})
	if after := openFds(t); after != before {
		t.Fatalf("%d fds open after the refusals, %d before", after, before)
	}
}
