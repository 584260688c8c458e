// Package proctest is a fake proc.Spawner for unit tests of what drives processes: its
// processes are real pipes and IPC socketpairs held by a real proc.Holder, but no process runs;
// the test plays it (prints, sends messages, exits, ignores signals) and no signal reaches a
// real pid.
package proctest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/proc"
)

// Spawner is the fake. The zero value is not usable; call New.
type Spawner struct {
	mu      sync.Mutex
	nextPid int
	procs   []*Proc
	started chan *Proc
	fail    error
	panicV  any
	live    map[int]uint64 // what Adopt accepts: pid → start tick
	adopted []*Proc

	// OnStart, when set, is called with each new process before Start returns (to make it
	// ignore signals, say ready, or exit at once).
	OnStart func(p *Proc)
}

// New returns a fake spawner whose pids start at 100000 (never signalled: no real process).
func New() *Spawner {
	return &Spawner{nextPid: 100000, started: make(chan *Proc, 1024), live: map[int]uint64{}}
}

// FailNext makes the next Start fail with err.
func (s *Spawner) FailNext(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// PanicNext makes the next Start panic with v before it creates anything (a bug in the
// daemon's path to a process).
func (s *Spawner) PanicNext(v any) {
	s.mu.Lock()
	s.panicV = v
	s.mu.Unlock()
}

// Live makes Adopt accept pid with that start tick, as a process still running.
func (s *Spawner) Live(pid int, tick uint64) {
	s.mu.Lock()
	s.live[pid] = tick
	s.mu.Unlock()
}

// Next waits for the next started process.
func (s *Spawner) Next(timeout time.Duration) (*Proc, error) {
	select {
	case p := <-s.started:
		return p, nil
	case <-time.After(timeout):
		return nil, errors.New("no process was started")
	}
}

// Procs returns every process started or adopted so far, in order.
func (s *Spawner) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// Running counts the processes not yet exited.
func (s *Spawner) Running() int {
	n := 0
	for _, p := range s.Procs() {
		select {
		case <-p.done:
		default:
			n++
		}
	}
	return n
}

// Start implements proc.Spawner.
func (s *Spawner) Start(c proc.Cmd) (proc.Process, error) {
	s.mu.Lock()
	fail, pv := s.fail, s.panicV
	s.fail, s.panicV = nil, nil
	s.mu.Unlock()
	if pv != nil {
		panic(pv)
	}
	if fail != nil {
		for _, fd := range c.Listen {
			unix.Close(fd)
		}
		return nil, fail
	}
	h, err := proc.NewHolder(c.App, c.Instance, c.IPC, c.Listen)
	if err != nil {
		return nil, err
	}
	p := s.newProc(c, h)
	p.ends = h.TakeChildEnds()
	if c.IPC {
		fd := p.ends[proc.IPCChildFd(len(c.Listen))]
		// Non-blocking, so that the runtime's poller serves it: a Close then wakes the reader
		// and really closes the fd, and the daemon sees EOF at once.
		_ = unix.SetNonblock(fd, true)
		p.ipc = os.NewFile(uintptr(fd), "ipc-child")
		p.ipcFd = fd
		p.ends[proc.IPCChildFd(len(c.Listen))] = -1
		go p.read()
	}
	h.SetProcess(p.pid, p.tick, -1)
	if s.OnStart != nil {
		s.OnStart(p)
	}
	s.started <- p
	return p, nil
}

// Adopt implements proc.Spawner.
func (s *Spawner) Adopt(pid int, tick uint64, h *proc.Holder) (proc.Process, error) {
	s.mu.Lock()
	t, ok := s.live[pid]
	s.mu.Unlock()
	if !ok || t != tick {
		return nil, fmt.Errorf("adopt pid %d: it is gone or is another process now", pid)
	}
	if h == nil {
		h = proc.AdoptedHolder(nil)
	}
	p := s.newProc(proc.Cmd{}, h)
	p.pid, p.tick = pid, tick
	h.SetProcess(pid, tick, -1)
	s.mu.Lock()
	s.adopted = append(s.adopted, p)
	s.mu.Unlock()
	return p, nil
}

// Adopted returns the processes Adopt took over.
func (s *Spawner) Adopted() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.adopted...)
}

func (s *Spawner) newProc(c proc.Cmd, h *proc.Holder) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextPid++
	p := &Proc{Cmd: c, pid: s.nextPid, tick: uint64(s.nextPid) * 7, h: h, done: make(chan struct{}),
		Signals: make(chan unix.Signal, 64), Messages: make(chan json.RawMessage, 256), obey: true}
	s.procs = append(s.procs, p)
	return p
}

// Proc is a fake process; the test plays it.
type Proc struct {
	Cmd proc.Cmd
	// Signals receives every signal sent to it (Signal and Stop); Messages every IPC message
	// the daemon wrote to it.
	Signals  chan unix.Signal
	Messages chan json.RawMessage

	pid   int
	tick  uint64
	h     *proc.Holder
	ends  []int // the child's fds: 0 stdin r, 1 stdout w, 2 stderr w, 3… sockets
	ipc   *os.File
	ipcFd int

	mu   sync.Mutex
	obey bool // exit on kill_signal
	once sync.Once
	done chan struct{}
	exit proc.Exit
}

// IgnoreSignals makes it outlive any signal but SIGKILL.
func (p *Proc) IgnoreSignals() {
	p.mu.Lock()
	p.obey = false
	p.mu.Unlock()
}

// Print writes s to its stdout (1) or stderr (2).
func (p *Proc) Print(stream int, s string) error {
	_, err := unix.Write(p.ends[stream], []byte(s))
	return err
}

// Send writes one IPC message (any JSON value) as a Node child does.
func (p *Proc) Send(v any) error {
	if p.ipc == nil {
		return errors.New("no IPC channel")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.ipc.Write(append(b, '\n'))
	return err
}

// CloseIPC closes its side of the IPC channel (Node's process.disconnect()): the daemon sees
// EOF, and what the daemon sent before stays readable in Messages.
func (p *Proc) CloseIPC() {
	if p.ipc != nil {
		_ = unix.Shutdown(p.ipcFd, unix.SHUT_WR)
	}
}

// Env returns the value of an environment variable it was started with.
func (p *Proc) Env(key string) string {
	for _, kv := range p.Cmd.Env {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			return kv[len(key)+1:]
		}
	}
	return ""
}

func (p *Proc) read() {
	r := bufio.NewReader(p.ipc)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 1 {
			// Node's child acknowledges every handle it is sent; the daemon waits for that.
			if strings.Contains(string(line), `"cmd":"NODE_HANDLE"`) {
				_ = p.Send(map[string]string{"cmd": "NODE_HANDLE_ACK"})
			}
			select {
			case p.Messages <- json.RawMessage(line[:len(line)-1]):
			default:
			}
		}
		if err != nil {
			p.ipc.Close()
			return
		}
	}
}

// ExitWith ends it with an exit code (or a signal, when sig is not 0).
func (p *Proc) ExitWith(code int, sig unix.Signal) {
	p.once.Do(func() {
		if sig != 0 {
			code = -1
		}
		p.exit = proc.Exit{Pid: p.pid, Code: code, Signal: sig, At: time.Now()}
		for _, fd := range p.ends {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		p.CloseIPC()
		close(p.done)
	})
}

// OnExit implements proc.Process.
func (p *Proc) OnExit(f func()) {
	go func() {
		<-p.done
		f()
	}()
}

// Exited reports whether it has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Proc) Pid() int              { return p.pid }
func (p *Proc) StartTick() uint64     { return p.tick }
func (p *Proc) Holder() *proc.Holder  { return p.h }
func (p *Proc) Done() <-chan struct{} { return p.done }
func (p *Proc) Exit() proc.Exit       { <-p.done; return p.exit }
func (p *Proc) Signal(sig unix.Signal) error {
	if p.Exited() {
		return fmt.Errorf("send %s to pid %d: %w", unix.SignalName(sig), p.pid, unix.ESRCH)
	}
	select {
	case p.Signals <- sig:
	default:
	}
	return nil
}

// Stop implements proc.Process: it exits on sig unless told to ignore signals, and on SIGKILL
// once grace has passed.
func (p *Proc) Stop(sig unix.Signal, grace time.Duration, tree bool) (bool, error) {
	if p.Exited() {
		return false, nil
	}
	_ = p.Signal(sig)
	p.mu.Lock()
	obey := p.obey
	p.mu.Unlock()
	if obey {
		p.ExitWith(0, sig)
		return false, nil
	}
	select {
	case <-p.done:
		return false, nil
	case <-time.After(grace):
	}
	_ = p.Signal(unix.SIGKILL)
	p.ExitWith(0, unix.SIGKILL)
	return true, nil
}

// Sweep implements proc.Process: a fake leaves nothing behind.
func (p *Proc) Sweep(unix.Signal, time.Duration) {}
