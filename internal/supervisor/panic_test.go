package supervisor

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// panicOnce is a writer whose first Write panics: a bug in the middle of a log reader.
type panicOnce struct{ done atomic.Bool }

func (w *panicOnce) Write(b []byte) (int, error) {
	if w.done.CompareAndSwap(false, true) {
		panic("injected in a log reader")
	}
	return len(b), nil
}

// A panic in an app's log reader is logged with its stack and the reader goes on, so the app
// never blocks on a pipe nobody reads; nothing else is touched.
func TestPanicInLogReaderReadsOn(t *testing.T) {
	f := newFixture(t, false)
	w := &panicOnce{}
	f.sup.echoOut, f.sup.echoErr = w, w // foreground mode's echo: called for every line
	if err := f.sup.Start(spec("other")); err != nil {
		t.Fatal(err)
	}
	f.next()
	if err := f.sup.Start(spec("noisy")); err != nil {
		t.Fatal(err)
	}
	p := f.next()
	if err := p.Print(1, "first\n"); err != nil {
		t.Fatal(err)
	}
	f.eventually("the panic logged", func() bool { return strings.Contains(f.log.String(), "log reader panic; reading on") })
	if !strings.Contains(f.log.String(), "goroutine") {
		t.Fatalf("no stack in the log:\n%s", f.log.String())
	}
	if err := p.Print(1, "second\n"); err != nil {
		t.Fatal(err)
	}
	out := f.info("noisy")[0].OutLog
	f.eventually("a later line in the file", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "second\n")
	})
	if f.info("noisy")[0].Status != Online || f.info("other")[0].Status != Online {
		t.Fatal("the panic touched an instance")
	}
}
