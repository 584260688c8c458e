package notify

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadyCarriesTheSendersPid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := Listen(path, 0o077)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket mode %v, %v", st.Mode(), err)
	}
	pids := make(chan int, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(conn, func(pid int) { pids <- pid }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"STATUS=warming up", "MAINPID=1\nREADY=1\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case pid := <-pids:
		if pid != os.Getpid() {
			t.Fatalf("pid %d, want the sender's %d (not what it claims)", pid, os.Getpid())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("READY=1 not seen")
	}
	conn.Close()
	<-done
	if len(pids) != 0 {
		t.Fatal("a datagram without READY=1 counted")
	}
}
