package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/logs"
)

// monitRun draws the screen on a terminal, or prints a plain table every two refreshes where
// there is none to draw on (TERM=dumb, output to a file or a pipe).
func monitRun(o *MonitOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("%w: no tend daemon is running: start an app first (tend start app.js)", errdefs.ErrUnreachable)
	}
	in, inFile := o.IO.In.(*os.File)
	out, outFile := o.IO.Out.(*os.File)
	dumb := os.Getenv("TERM") == "" || os.Getenv("TERM") == "dumb"
	if !inFile || !outFile || dumb || !o.IO.IsStdoutTTY() || !term.IsTerminal(int(in.Fd())) {
		return plainMonit(o, c)
	}
	return screenMonit(o, c, in, out)
}

// plainMonit prints the table again and again, until interrupted.
func plainMonit(o *MonitOptions, c client.API) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	for {
		procs, err := c.Rows()
		if err != nil {
			return err
		}
		fmt.Fprintln(o.IO.Out, o.Now().Format("15:04:05"))
		renderTable(o.IO, procs, o.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * o.Every):
		}
	}
}

// screenMonit runs the screen: raw keys, the alternate screen, a redraw on each tick, key and
// resize; the terminal is left as it was found, also when the process is told to stop.
func screenMonit(o *MonitOptions, c client.API, in, out *os.File) error {
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return plainMonit(o, c)
	}
	defer term.Restore(int(in.Fd()), old)
	io.WriteString(out, "\x1b[?1049h\x1b[?25l")
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")

	keys := make(chan []byte)
	go func() {
		defer close(keys)
		buf := make([]byte, 64)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			keys <- bytes.Clone(buf[:n])
		}
	}()
	resized := make(chan os.Signal, 1)
	signal.Notify(resized, unix.SIGWINCH)
	defer signal.Stop(resized)
	told := make(chan os.Signal, 1)
	signal.Notify(told, unix.SIGTERM, unix.SIGHUP, unix.SIGINT)
	defer signal.Stop(told)

	st := &monitState{color: o.IO.ColorEnabled(), now: o.Now()}
	var tail logTail
	done := make(chan string, 4)
	refresh := func() {
		st.now = o.Now()
		procs, err := c.Rows()
		if err != nil {
			st.msg = "tend: " + err.Error()
			return
		}
		st.setProcs(procs)
		if p, ok := st.selected(); ok && p.PmID != tail.id {
			tail.reset(p, st)
		}
	}
	draw := func() {
		w, h, err := term.GetSize(int(out.Fd()))
		if err != nil {
			w, h = 80, 24
		}
		var b strings.Builder
		b.WriteString("\x1b[H")
		for i, l := range st.render(w, h) {
			if i > 0 {
				b.WriteString("\r\n")
			}
			b.WriteString(l + "\x1b[K")
		}
		b.WriteString("\x1b[J")
		io.WriteString(out, b.String())
	}
	act := func(what string, f func(p api.Process) error) {
		p, ok := st.selected()
		if !ok {
			return
		}
		st.msg = what + " " + p.Name + "…"
		go func() {
			if err := f(p); err != nil {
				done <- "tend: " + oneLine(err.Error())
				return
			}
			done <- what + " " + p.Name + ": done"
		}()
	}
	count := func(name string) int {
		n := 0
		for _, p := range st.procs {
			if p.Name == name {
				n++
			}
		}
		return n
	}
	// The event stream says when something changed: the list is asked for again at once,
	// rather than at the next tick.
	changed := make(chan struct{}, 1)
	if stream, err := c.Events(); err == nil {
		defer stream.Close()
		go func() {
			sc := bufio.NewScanner(stream)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if len(sc.Bytes()) == 0 {
					continue // the heartbeat
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	refresh()
	draw()
	list := time.NewTicker(o.Every)
	defer list.Stop()
	follow := time.NewTicker(o.Every / 4)
	defer follow.Stop()
	for {
		select {
		case k, ok := <-keys:
			if !ok {
				return nil
			}
			for _, key := range splitKeys(k) {
				switch key {
				case "q", "\x03", "\x04":
					return nil
				case "j", "\x1b[B":
					st.move(1)
				case "k", "\x1b[A":
					st.move(-1)
				case "\x1b[6~", " ":
					st.move(10)
				case "\x1b[5~":
					st.move(-10)
				case "r":
					act("restart", func(p api.Process) error { return c.Action("restart", strconv.Itoa(p.PmID)) })
				case "l":
					act("reload", func(p api.Process) error { return c.Action("reload", strconv.Itoa(p.PmID)) })
				case "s":
					act("stop", func(p api.Process) error { return c.Action("stop", strconv.Itoa(p.PmID)) })
				case "+":
					act("scale up", func(p api.Process) error { return c.Scale(p.Name, count(p.Name)+1) })
				case "-":
					act("scale down", func(p api.Process) error { return c.Scale(p.Name, max(count(p.Name)-1, 1)) })
				}
			}
			if p, ok := st.selected(); ok && p.PmID != tail.id {
				tail.reset(p, st)
			}
		case m := <-done:
			st.msg = m
			refresh()
		case <-follow.C:
			tail.poll(st)
		case <-list.C:
			refresh()
		case <-changed:
			refresh()
		case <-resized:
		case <-told:
			return nil
		}
		draw()
	}
}

// logTail follows the selected instance's log files for the screen.
type logTail struct {
	id    int
	paths [2]string
	off   [2]int64
}

// The screen keeps this many log lines, and reads at most followMax bytes of a file per poll: a
// flood shows its latest lines, and the screen stays responsive.
const (
	keptLogLines = 200
	followMax    = 64 << 10
)

func (t *logTail) reset(p api.Process, st *monitState) {
	t.id = p.PmID
	t.paths = [2]string{p.Pm2Env.PmOutLogPath, p.Pm2Env.PmErrLogPath}
	st.logs = nil
	for i, path := range t.paths {
		t.off[i] = 0
		if path == "" || path == "/dev/null" || (i == 1 && path == t.paths[0]) {
			t.paths[i] = ""
			continue
		}
		lines, end, err := logs.Tail(path, 20)
		if err != nil {
			continue
		}
		t.off[i] = end
		for _, l := range lines {
			st.logs = append(st.logs, logLine{l, i == 1})
		}
	}
}

func (t *logTail) poll(st *monitState) {
	for i, path := range t.paths {
		if path == "" {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		size := int64(0)
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		if size < t.off[i] {
			t.off[i] = 0 // rotated or flushed
		}
		from := max(t.off[i], size-followMax)
		buf := make([]byte, size-from)
		n, _ := f.ReadAt(buf, from)
		f.Close()
		buf = buf[:n]
		if from > t.off[i] {
			// Skipped the middle of a flood: start at a line's beginning.
			if j := bytes.IndexByte(buf, '\n'); j >= 0 {
				buf, from = buf[j+1:], from+int64(j+1)
			}
		}
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 {
			continue // no whole line yet
		}
		for _, l := range strings.Split(string(buf[:end]), "\n") {
			st.logs = append(st.logs, logLine{l, i == 1})
		}
		t.off[i] = from + int64(end) + 1
	}
	if n := len(st.logs); n > keptLogLines {
		st.logs = st.logs[n-keptLogLines:]
	}
}

// splitKeys cuts what one read of the terminal gave into keys: an escape sequence (an arrow,
// Page Up/Down) is one key, any other byte is one.
func splitKeys(b []byte) []string {
	var keys []string
	for len(b) > 0 {
		n := 1
		if b[0] == 0x1b && len(b) >= 3 && b[1] == '[' {
			n = 3
			if b[2] >= '0' && b[2] <= '9' {
				if i := bytes.IndexByte(b, '~'); i > 0 {
					n = i + 1
				}
			}
		}
		keys = append(keys, string(b[:n]))
		b = b[n:]
	}
	return keys
}
