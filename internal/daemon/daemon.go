// Package daemon wires the daemon together: its files under $TEND_HOME, the control socket, the
// supervisor, the sampler, the registry, its keeper's link and what the keeper kept for it, the
// signals it answers, and its ways out (stop everything, or hand over to a new binary).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/keeper"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/notify"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/state"
	"github.com/tend-sh/tend/internal/supervisor"
	"github.com/tend-sh/tend/internal/wire"
)

// Options configure one daemon run.
type Options struct {
	Home       string
	Version    string
	Foreground bool      // echo the apps' lines and the daemon's own log to Stdout/Stderr
	Stdout     io.Writer // used when Foreground
	Stderr     io.Writer
	// Ready, if set, is called once the socket serves; its error makes Run shut down and fail.
	Ready func() error
	// ExitWhenDone makes Run return once every app is stopped or errored (pm2-runtime's
	// behaviour, so that a container's restart policy sees a dead service); with an errored app
	// the error says so.
	ExitWhenDone bool
}

// unwrap is the cause inside an *os.PathError.
var unwrap = home.PathCause

// ErrAlreadyRunning is returned when another daemon holds $TEND_HOME.
var ErrAlreadyRunning = errdefs.ErrAlreadyRunning

// Run runs the daemon until it is told to stop (kill, SIGTERM, SIGINT). It returns a non-nil
// error if it could not start, or if an app could not be stopped on the way out.
func Run(o Options) error {
	p := home.At(o.Home)
	if err := p.Prepare(); err != nil {
		return err
	}

	lock, err := home.OpenFile(p.Lock, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("open %s: %v", p.Lock, unwrap(err))
	}
	defer lock.Close()
	if err := acquire(lock, p.Socket); err != nil {
		pid, _ := os.ReadFile(p.Pid)
		return fmt.Errorf("%w for %s (pid %s); use it, or stop it with `tend kill`", ErrAlreadyRunning, o.Home, strings.TrimSpace(string(pid)))
	}

	settings, settingsErr := state.LoadSettings(p.Settings)
	// tend.log rotates as the apps' logs do (pm2-logrotate rotates pm2.log too).
	ownLogs := logs.NewFiles()
	ownLogs.NoFollowUnder = o.Home
	logFile, err := ownLogs.OpenRotating(p.Log, supervisor.LogsRotation(settings.Rotate.Over(config.DefaultRotate), func(string, ...any) {}))
	if err != nil {
		return fmt.Errorf("open daemon log %s: %v", p.Log, unwrap(err))
	}
	defer logFile.Close()
	var logOut io.Writer = fileWriter{logFile}
	if o.Foreground && o.Stderr != nil {
		logOut = io.MultiWriter(fileWriter{logFile}, o.Stderr)
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	if settingsErr != nil {
		log.Error("settings not read; tend's defaults hold until `tend set` writes them again", "err", settingsErr)
	}

	// We hold the lock, so a socket file left behind is stale; still, never remove a socket that
	// answers (DESIGN: detected by dialing, never removed blindly).
	if _, err := os.Lstat(p.Socket); err == nil {
		if c, err := net.DialTimeout("unix", p.Socket, 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("%w: %s answers although no daemon holds %s; stop the process serving it", ErrAlreadyRunning, p.Socket, p.Lock)
		}
		log.Info("removing stale socket", "path", p.Socket)
		os.Remove(p.Socket)
	}
	old := unix.Umask(home.SocketUmask)
	ln, err := net.Listen("unix", p.Socket)
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("listen on %s: %v", p.Socket, unwrap(err))
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	defer os.Remove(p.Socket)
	if err := home.WritePid(p.Pid); err != nil {
		ln.Close()
		return fmt.Errorf("write %s: %v", p.Pid, unwrap(err))
	}
	defer os.Remove(p.Pid)
	// Where PM2's scripts look for the daemon's pid: PM2_PID_FILE_PATH, and pm2.pid when
	// $TEND_HOME is PM2's own folder (kill `cat ~/.pm2/pm2.pid`).
	extras := []string{os.Getenv("PM2_PID_FILE_PATH")}
	if filepath.Base(o.Home) == ".pm2" {
		extras = append(extras, p.PM2Pid)
	}
	for _, extra := range extras {
		if extra == "" {
			continue
		}
		if err := os.WriteFile(extra, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			log.Warn("cannot write the daemon's pid for PM2's scripts", "path", extra, "err", err)
		} else {
			defer home.RemovePid(extra, os.Getpid())
		}
	}

	reaper, err := proc.NewReaper(log)
	if err != nil {
		ln.Close()
		return err
	}
	// The keeper that runs this daemon, if any: it holds what the last daemon left.
	link, kst, err := keeper.FromEnv(log)
	if err != nil {
		log.Error("keeper: not adopting what it keeps; its apps go on unsupervised until `tend kill`", "err", err)
	}
	var store keeper.Store = keeper.Nop{}
	if link != nil {
		store = link
		defer link.Close()
	}
	spawner := proc.NewForkExec(reaper, store)
	for _, e := range kst.Exits {
		spawner.Exited(e)
	}
	if link != nil {
		go func() {
			if err := link.Serve(spawner.Exited); err != nil {
				log.Error("keeper channel", "err", err)
			}
		}()
	}
	d := &daemon{ln: ln, opts: o, paths: p, log: log, sampler: metrics.NewSampler(), dirty: make(chan struct{}, 1), stop: make(chan struct{}),
		link: link, keeperPid: kst.KeeperPid, ownLogs: ownLogs, ownLog: logFile, settings: settings}
	d.sampling.wake = make(chan struct{}, 1)
	d.setMetrics(settings.Metrics)
	so := supervisor.Options{Home: o.Home, Spawner: spawner, Adopt: link != nil, Store: store, Log: log, OnChange: d.markDirty, SelfExe: "/proc/self/exe",
		Events: &d.events,
		Rotate: settings.Rotate, SecretWords: settings.SecretKeys}
	if so.Preload, err = ipc.WritePreload(p.Lib); err != nil {
		// Node cluster apps still run; a reload then waits drain_timeout for keep-alive clients.
		log.Error("node preload unavailable", "err", err)
	}
	if o.Foreground {
		so.EchoOut, so.EchoErr = &lockedWriter{w: o.Stdout}, &lockedWriter{w: o.Stderr}
	}
	ready, err := notify.Listen(p.Notify, home.SocketUmask)
	if err != nil {
		log.Error("readiness socket unavailable; apps that send READY=1 are online after min_uptime", "err", err)
	} else {
		defer os.Remove(p.Notify)
		defer ready.Close()
		so.NotifySocket = p.Notify
	}
	shared, sharedAt := shareForOthers(o.Home, &so, log)
	if sharedAt != "" {
		defer os.RemoveAll(sharedAt)
	}
	if shared != nil {
		defer shared.Close()
	}
	d.sup = supervisor.New(so)
	if ready != nil {
		go notify.Serve(ready, d.sup.ReadyFrom, log)
	}
	if shared != nil {
		go notify.Serve(shared, d.sup.ReadyFrom, log)
	}
	log.Info("daemon started", "pid", os.Getpid(), "version", o.Version, "home", o.Home, "keeper", kst.KeeperPid)

	kept := keptFrom(kst, store, log)
	reg, err := state.Load(p.Registry)
	if err != nil {
		log.Error("registry unreadable; starting empty", "err", err)
	}
	if reg == nil {
		reg = &state.Registry{}
	}
	if len(reg.Apps) > 0 || len(kst.Records) > 0 {
		if link != nil {
			log.Info("adopting the apps the keeper kept", "apps", len(reg.Apps), "kept_runs", len(kept.Runs))
		} else {
			log.Warn("the previous daemon did not shut down; restoring its apps", "apps", len(reg.Apps))
		}
		d.sup.Restore(*reg, kept)
	}

	persistDone := make(chan struct{})
	go d.persist(persistDone)
	go d.sampleLoop()
	go d.trimLoop()
	go d.sup.RunCron(d.quit())
	if err := d.serveMetrics(settings.Metrics.Listen); err != nil {
		log.Error("metrics_listen: /metrics is not served", "err", err)
	}

	// A client has 5 s for its header and 10 s for the whole request: a connection that sends
	// half a request is closed then, never held.
	srv := &wire.Server{Handler: d.routes(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: requestTimeout, Allow: d.allowPeer}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, wire.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("control socket", "err", err)
		}
	}()

	if link != nil {
		link.Serving()
		if kst.Build != o.Version {
			// tend update put another binary in place: the keeper re-executes itself from it.
			if exe, err := os.Executable(); err == nil {
				log.Info("keeper: asking it to upgrade", "from", kst.Build, "to", o.Version, "exe", exe)
				link.Upgrade(exe)
			}
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR2)
	defer signal.Stop(sigs)

	// Ready (the foreground start) runs beside the signal loop, so a SIGTERM during a long start
	// is acted on at once.
	var readyErr error
	readyCh := make(chan error, 1)
	if o.Ready != nil {
		go func() { readyCh <- o.Ready() }()
	} else if o.ExitWhenDone {
		go d.watchDone() // the apps come from the keeper's Ready, or the restored registry
	}

wait:
	for {
		select {
		case readyErr = <-readyCh:
			if readyErr != nil {
				d.requestStop("start failed")
			} else if o.ExitWhenDone {
				go d.watchDone()
			}
		case s := <-sigs:
			switch s {
			case unix.SIGHUP:
				log.Info("SIGHUP ignored (use tend reload)")
			case unix.SIGUSR2:
				log.Info("reopening log files")
				if err := d.reopenLogs(); err != nil {
					log.Error("reopen log files", "err", err)
				}
			default:
				log.Info("signal received; stopping every app", "signal", s.String())
				break wait
			}
		case <-d.stop:
			break wait
		}
	}

	ln.Close() // no new requests reach a daemon on its way out
	if d.replacing.Load() {
		// tend update: the apps stay, with the keeper; the next daemon reads the registry.
		close(d.quit())
		_ = d.serveMetrics("") // the next daemon binds it
		<-persistDone
		_ = d.commit() // said in tend.log if it fails
		log.Info("daemon replaced; the apps stay with the keeper")
		return nil
	}
	stopErr := d.sup.Shutdown()
	close(d.quit())
	_ = d.serveMetrics("")
	<-persistDone
	os.Remove(p.Registry) // told to go: the next daemon starts empty
	if link != nil {
		link.Bye() // the keeper goes with us
		if link.Gone() {
			// A keeper killed with -9 left its pid file; nobody else will remove it.
			if b, err := os.ReadFile(p.KeeperPid); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(kst.KeeperPid) {
				os.Remove(p.KeeperPid)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(ctx)
	cancel()
	if stopErr != nil {
		log.Error("some apps could not be stopped", "err", stopErr)
	} else {
		log.Info("daemon stopped")
	}
	var doneErr error
	if p := d.doneErr.Load(); p != nil {
		doneErr = *p
	}
	return errors.Join(readyErr, stopErr, doneErr)
}

// watchDone asks the daemon to stop once no app runs any more.
func (d *daemon) watchDone() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-d.stop:
			return
		}
		infos := d.sup.List()
		if len(infos) == 0 {
			continue
		}
		var errored []string
		running := false
		for _, i := range infos {
			switch i.Status {
			case supervisor.Stopped:
			case supervisor.Errored:
				errored = append(errored, i.Name)
			default:
				running = true
			}
		}
		if running {
			continue
		}
		if len(errored) > 0 {
			err := fmt.Errorf("every app has stopped, and %s errored (see %s)", strings.Join(errored, ", "), d.paths.Log)
			d.doneErr.Store(&err)
		}
		d.requestStop("every app has stopped")
		return
	}
}

const syscall_O_CLOEXEC = unix.O_CLOEXEC

// acquire takes the daemon lock. A holder whose socket no longer answers is a daemon on its way
// out (after `tend kill`), so it is given a few seconds to go; one that answers is refused at once.
func acquire(lock *os.File, socket string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if c, derr := net.DialTimeout("unix", socket, 200*time.Millisecond); derr == nil {
			c.Close()
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type daemon struct {
	ln      net.Listener
	opts    Options
	paths   home.Layout
	log     *slog.Logger
	sup     *supervisor.Supervisor
	sampler *metrics.Sampler
	dirty   chan struct{}

	stopOnce sync.Once
	stop     chan struct{}
	quitOnce sync.Once
	quitCh   chan struct{}

	doneErr atomic.Pointer[error] // set by watchDone when an app errored

	saveMu      sync.Mutex // one registry write at a time
	saveFailing bool       // the last registry write failed (guarded by saveMu)

	link      *keeper.Link // nil without a keeper
	keeperPid int
	replacing atomic.Bool // tend update: go, leaving every app running

	lastRead   atomic.Int64 // unix nanos of the last read of the figures: the sampler's cadence
	sampling   samplingState
	events     events.Hub
	metricsSrv metricsServer
	gen        atomic.Uint64 // bumped on every change the jlist shows
	full, slim listCache     // jlist's bytes, and the rows'

	ownLogs   *logs.Files // tend.log's
	ownLog    *logs.File
	setMu     sync.Mutex // one settings change at a time
	refusedMu sync.Mutex
	refused   map[int]int // connections refused, by the peer's uid
	settings  state.Settings
}

// allowPeer lets in a connection to tend.sock from the daemon's own user or root only, checked
// on the kernel's record of the peer (SO_PEERCRED), so that a socket file another user can
// reach (a home made world-readable by mistake) still gives them nothing. A refused user is said
// once in tend.log, with the count growing silently after.
func (d *daemon) allowPeer(c net.Conn) bool {
	uid, ok := wire.PeerUID(c)
	if ok && (uid == os.Geteuid() || uid == 0) {
		return true
	}
	d.refusedMu.Lock()
	defer d.refusedMu.Unlock()
	if d.refused == nil {
		d.refused = map[int]int{}
	}
	if d.refused[uid]++; d.refused[uid] == 1 {
		d.log.Warn("refused a connection to tend.sock from another user", "uid", uid, "known", ok)
	}
	return false
}

// fileWriter is a log file as the daemon's logger writes to it: one record, one whole line.
type fileWriter struct{ f *logs.File }

func (w fileWriter) Write(p []byte) (int, error) { return len(p), w.f.Write(p) }

// reopenLogs reopens every log file, tend.log's too (an external logrotate moved them).
func (d *daemon) reopenLogs() error {
	return errors.Join(d.sup.Files().Reopen(), d.ownLogs.Reopen())
}

func (d *daemon) requestStop(why string) {
	d.stopOnce.Do(func() {
		d.log.Info("stopping", "reason", why)
		close(d.stop)
	})
}

// requestReplace makes the daemon go without stopping its apps (tend update).
func (d *daemon) requestReplace() {
	d.replacing.Store(true)
	d.requestStop("replaced by tend update")
}

func (d *daemon) quit() chan struct{} {
	d.quitOnce.Do(func() { d.quitCh = make(chan struct{}) })
	return d.quitCh
}

func (d *daemon) markDirty() {
	d.gen.Add(1)
	select {
	case d.dirty <- struct{}{}:
	default:
	}
}

// commit saves the registry now. A command that changes what runs commits before it answers, so
// that what it did outlives a daemon killed the moment after (the keeper's next daemon reads it).
func (d *daemon) commit() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	err := state.Save(d.paths.Registry, d.sup.Snapshot())
	switch {
	case err != nil && !d.saveFailing:
		// Said once, until a save works again; the last good registry stays in place.
		d.log.Error("the registry cannot be saved; a daemon that died now would not know the changes since", "err", err)
		d.saveFailing = true
	case err == nil && d.saveFailing:
		d.log.Info("the registry is saved again")
		d.saveFailing = false
	}
	if err != nil {
		return fmt.Errorf("done, but %s could not be saved (%v): a daemon that died now would forget it; free space in %s",
			d.paths.Registry, home.PathCause(err), d.paths.Home)
	}
	return nil
}

// committed writes the registry after a request changed state, and makes the answer an error if
// it could not be written: a change the next daemon would not know is never answered OK.
func (d *daemon) committed(err error) error {
	if cerr := d.commit(); err == nil {
		return cerr
	}
	return err
}

// persist writes the registry after changes, batched: a start of 200 apps is a handful of
// writes, not 400 fsynced renames.
func (d *daemon) persist(done chan struct{}) {
	defer close(done)
	quit := d.quit()
	for {
		select {
		case <-d.dirty:
			time.Sleep(50 * time.Millisecond)
			select {
			case <-d.dirty:
			default:
			}
			_ = d.commit() // said in tend.log if it fails
		case <-quit:
			return
		}
	}
}

// lockedWriter keeps the lines of concurrent log readers whole on a shared stdout.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
