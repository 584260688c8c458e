// Package supervisor runs apps: each instance is owned by one goroutine holding its state machine
// and restart policy; the rest of the daemon reads published, immutable Infos.
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/internal/state"
)

// ErrNotFound is returned when a selector matches nothing.
var ErrNotFound = errors.New("not found")

// ErrClosing is returned for a start that comes after the daemon began to stop.
var ErrClosing = errors.New("the daemon is stopping; start again once it is gone")

// Options wire a Supervisor to the daemon.
type Options struct {
	Home     string
	Reaper   *proc.Reaper
	Log      *slog.Logger
	EchoOut  io.Writer // foreground mode: apps' lines also go here
	EchoErr  io.Writer
	OnChange func() // called after any published change (cheap; the daemon debounces)
	Preload  string // tend's Node preload (drain, and sockets for unknown Nodes); "" for none
	SelfExe  string // how to run tend's exec helper in a child ("/proc/self/exe")
	// NotifySocket is the path of the daemon's sd_notify socket ("" for none).
	NotifySocket string
}

// Supervisor owns the apps.
type Supervisor struct {
	home    string
	logDir  string
	files   *logs.Files
	reaper  *proc.Reaper
	log     *slog.Logger
	echoOut io.Writer
	echoErr io.Writer
	onCh    func()
	preload string
	selfExe string
	claims  *sockets.Registry
	notify  string
	running sync.Map // pid → *running: whose process is whose, for readiness datagrams

	workerID atomic.Int64 // NODE_UNIQUE_ID of Node cluster workers

	nodeMu   sync.Mutex
	nodeShim map[string]bool // per Node binary: its cluster protocol is unknown to tend

	mu      sync.Mutex
	apps    []*App // in creation order
	nextID  int
	closing bool // Shutdown began: no app may be added or started any more

	dateMu sync.Mutex
	dates  map[string]*logs.DateFormat
}

// App is a named group of instances sharing one spec, and the listening sockets they share.
type App struct {
	Name      string
	instances []*Instance
	socks     *sockets.Set

	pmu   sync.Mutex
	proxy *proxy.Proxy // proxy mode: relays the public port while the app runs

	// removing are instances a smaller count took out, until their processes are gone and their
	// slot sockets closed: their slots are not given to new instances meanwhile, and the
	// registry still lists them (a daemon that dies meanwhile is followed by one that stops them).
	removing []*Instance
}

func (a *App) proxyNow() *proxy.Proxy {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	return a.proxy
}

// ensureProxy starts relaying the app's port, once: its listening socket is probed and held
// like any slot socket, so a port in use fails the start before anything runs.
func (a *App) ensureProxy(spec *config.AppSpec, log *slog.Logger) error {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	if a.proxy != nil {
		return nil
	}
	l := spec.Ports[0]
	fd, _, _, err := a.socks.Dup(sockets.Key{Host: l.Host, Port: l.Port}, proxySlot, nil)
	if err != nil {
		return err
	}
	p := proxy.New(log.With("app", a.Name, "port", l.Port))
	if err := p.Serve(fd); err != nil {
		return fmt.Errorf("proxy for port %d: %w", l.Port, err)
	}
	a.proxy = p
	return nil
}

// proxySlot is where the proxy's own socket sits in the app's set: no instance has it, and it is
// never excluded from the kernel's choice (the group has only this socket).
const proxySlot = -1

func (a *App) closeProxy() {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	if a.proxy != nil {
		a.proxy.Close()
		a.proxy = nil
	}
}

func (s *Supervisor) newApp(name string) *App {
	return &App{Name: name, socks: sockets.NewSet(name, s.claims)}
}

// releaseIfIdle closes the app's sockets once none of its instances runs: a stopped app holds
// no port, so its clients are refused rather than left waiting.
func (s *Supervisor) releaseIfIdle(a *App) {
	s.mu.Lock()
	ins := slices.Clone(a.instances)
	s.mu.Unlock()
	for _, in := range ins {
		if i := in.Info(); i.Pid != 0 || (i.Status != Stopped && i.Status != Errored) {
			return
		}
	}
	// A process still counted by the set (an instance being removed, a reload's old process, a
	// start under way) keeps the sockets open; the last one to go calls this again.
	if a.socks.CloseIfUnused() {
		a.closeProxy()
	}
}

// New returns an empty supervisor.
func New(o Options) *Supervisor {
	return &Supervisor{
		home: o.Home, logDir: filepath.Join(o.Home, "logs"), files: logs.NewFiles(), reaper: o.Reaper,
		log: o.Log, echoOut: o.EchoOut, echoErr: o.EchoErr, onCh: o.OnChange,
		preload: o.Preload, selfExe: o.SelfExe, claims: sockets.NewRegistry(), notify: o.NotifySocket,
		nodeShim: map[string]bool{},
		dates:    map[string]*logs.DateFormat{},
	}
}

func (s *Supervisor) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Supervisor) changed() {
	if s.onCh != nil {
		s.onCh()
	}
}

func (s *Supervisor) dateFormat(layout string) (*logs.DateFormat, error) {
	if layout == "" {
		return nil, nil
	}
	s.dateMu.Lock()
	defer s.dateMu.Unlock()
	if d, ok := s.dates[layout]; ok {
		return d, nil
	}
	d, err := logs.ParseDateFormat(layout)
	if err != nil {
		return nil, err
	}
	s.dates[layout] = d
	return d, nil
}

// List returns the infos of every instance, in id order.
func (s *Supervisor) List() []*Info {
	s.mu.Lock()
	var out []*Info
	for _, a := range s.apps {
		for _, in := range a.instances {
			out = append(out, in.Info())
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *Info) int { return a.ID - b.ID })
	return out
}

// Select returns the instances a PM2 selector names: "all", an id, an app name or a namespace.
func (s *Supervisor) Select(target string) ([]*Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Instance
	switch {
	case target == "all":
		for _, a := range s.apps {
			out = append(out, a.instances...)
		}
		return out, nil
	case config.IsID(target):
		id, _ := strconv.Atoi(target)
		for _, a := range s.apps {
			for _, in := range a.instances {
				if in.id == id {
					return []*Instance{in}, nil
				}
			}
		}
		return nil, fmt.Errorf("%w: no process with id %d (see tend ls)", ErrNotFound, id)
	}
	if a := s.findLocked(target); a != nil {
		return slices.Clone(a.instances), nil
	}
	for _, a := range s.apps {
		if len(a.instances) > 0 && a.instances[0].Info().Spec.Namespace == target {
			out = append(out, a.instances...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no app named %q (see tend ls)", ErrNotFound, target)
	}
	return out, nil
}

func (s *Supervisor) findLocked(name string) *App {
	for _, a := range s.apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Has reports whether an app of that name exists.
func (s *Supervisor) Has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.findLocked(name) != nil
}

// Start starts a new app from spec, or, when an app of that name exists, restarts it with the
// new spec (PM2: starting a name that runs restarts it). It returns when every instance is
// online or has failed.
func (s *Supervisor) Start(spec config.AppSpec) error {
	run, err := s.Add(spec)
	if err != nil {
		return err
	}
	return run()
}

// Check validates a spec as Add will, so that a request of several apps can be refused whole
// before any of them is touched.
func (s *Supervisor) Check(spec *config.AppSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if _, err := s.dateFormat(spec.LogDateFormat); err != nil {
		return fmt.Errorf("%w: app %q: log_date_format: %v", config.ErrInvalid, spec.Name, err)
	}
	return nil
}

// Add registers the app (its instances get their ids now, in call order) and returns the
// function that starts them and waits until they are online or failed.
func (s *Supervisor) Add(spec config.AppSpec) (func() error, error) {
	if err := s.Check(&spec); err != nil {
		return nil, err
	}
	sp := &spec
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosing
	}
	a := s.findLocked(spec.Name)
	if a == nil {
		a = s.newApp(spec.Name)
		s.apps = append(s.apps, a)
	}
	existing, added, removed := s.resizeLocked(a, sp, spec.Instances)
	s.mu.Unlock()
	s.changed()
	return func() error {
		return joinDistinct(s.resize(a, sp, existing, added, removed, resizing{kept: cmdRestart, startNew: sp.Autostart}))
	}, nil
}

// remove deletes an instance a smaller count took out (draining it first when drain is set),
// closes its slot's sockets, and then frees the slot.
func (s *Supervisor) remove(a *App, in *Instance, drain bool) error {
	err := in.do(command{kind: cmdDelete, drain: drain})
	a.socks.CloseSlot(in.index)
	s.mu.Lock()
	a.removing = slices.DeleteFunc(a.removing, func(x *Instance) bool { return x == in })
	s.mu.Unlock()
	s.changed()
	s.releaseIfIdle(a)
	return err
}

// joinDistinct joins errors, once per distinct message: instances failing for one reason (a
// port in use) say it once.
func joinDistinct(errs []error) error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if e == nil || seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		out = append(out, e)
	}
	return errors.Join(out...)
}

// resizeLocked gives the app n instances: the existing ones keep their slots, new ones take the
// lowest free slots, and a smaller count takes out those with the highest (the caller deletes
// them). The instances taken out still count in the app's sockets until their processes are gone.
func (s *Supervisor) resizeLocked(a *App, sp *config.AppSpec, n int) (kept, added, removed []*Instance) {
	kept = slices.Clone(a.instances)
	slices.SortFunc(kept, func(x, y *Instance) int { return x.index - y.index })
	if len(kept) > n {
		kept, removed = kept[:n], kept[n:]
		a.instances = slices.DeleteFunc(a.instances, func(in *Instance) bool { return slices.Contains(removed, in) })
		a.removing = append(a.removing, removed...)
	}
	for _, idx := range freeSlots(append(slices.Clone(kept), a.removing...), n-len(kept)) {
		in := newInstance(s, a, s.nextID, idx, sp, History{}, Stopped)
		s.nextID++
		a.instances = append(a.instances, in)
		added = append(added, in)
	}
	return kept, added, removed
}

// freeSlots returns the n lowest slots no instance of ins has.
func freeSlots(ins []*Instance, n int) []int {
	used := map[int]bool{}
	for _, in := range ins {
		used[in.index] = true
	}
	var out []int
	for idx := 0; len(out) < n; idx++ {
		if !used[idx] {
			out = append(out, idx)
		}
	}
	return out
}

// AddForReload is Add for `reload <config>`: an app that exists takes the new spec and its
// count, then its instances are reloaded one at a time with it (a new app just starts).
func (s *Supervisor) AddForReload(spec config.AppSpec) (func() error, error) {
	if !s.Has(spec.Name) {
		return s.Add(spec)
	}
	if err := s.Check(&spec); err != nil {
		return nil, err
	}
	sp := &spec
	s.mu.Lock()
	a := s.findLocked(spec.Name)
	if s.closing || a == nil {
		s.mu.Unlock()
		return nil, ErrClosing
	}
	kept, added, removed := s.resizeLocked(a, sp, spec.Instances)
	s.mu.Unlock()
	s.changed()
	return func() error {
		errs := s.resize(a, sp, kept, added, removed, scaling)
		for _, in := range kept {
			if err := in.do(command{kind: cmdReload}); err != nil {
				errs = append(errs, err)
				break // the rest keep their old processes, still serving
			}
		}
		return joinDistinct(errs)
	}, nil
}

// resizing says what resize does with each part of resizeLocked's outcome.
type resizing struct {
	kept     cmdKind // cmdRestart (start of a config: new settings, new processes) or cmdRespec
	startNew bool    // start the added instances
	drain    bool    // let the removed ones finish their requests first
}

// scaling is how scale and a reload of a config file change the count: the running processes
// are left alone, and the instances the user asked for start even with autostart off.
var scaling = resizing{kept: cmdRespec, startNew: true, drain: true}

// resize applies resizeLocked's outcome, every instance side by side: the kept ones restart or
// take the new spec as they are, new ones start, and removed ones go.
func (s *Supervisor) resize(a *App, sp *config.AppSpec, kept, added, removed []*Instance, how resizing) []error {
	errs := make([]error, len(kept)+len(added)+len(removed))
	var wg sync.WaitGroup
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	for i, in := range kept {
		run(i, func() error { return in.do(command{kind: how.kept, spec: sp}) })
	}
	for i, in := range added {
		if how.startNew {
			run(len(kept)+i, func() error { return in.do(command{kind: cmdStart, spec: sp}) })
		}
	}
	for i, in := range removed {
		run(len(kept)+len(added)+i, func() error { return s.remove(a, in, how.drain) })
	}
	wg.Wait()
	return errs
}

// Reload replaces the processes of the selected instances without a gap in service: app by app
// side by side, and within an app one instance at a time (a rolling reload). When one instance
// fails to come up, the app's remaining instances are left alone, still serving.
func (s *Supervisor) Reload(target string) ([]*Instance, error) {
	if s.isClosing() {
		return nil, ErrClosing
	}
	ins, err := s.Select(target)
	if err != nil {
		return nil, err
	}
	var order []string
	byApp := map[string][]*Instance{}
	for _, in := range ins {
		name := in.Info().Name
		if _, ok := byApp[name]; !ok {
			order = append(order, name)
		}
		byApp[name] = append(byApp[name], in)
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, name := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list := byApp[name]
			for j, in := range list {
				if err := in.do(command{kind: cmdReload}); err != nil {
					if left := len(list) - j - 1; left > 0 {
						err = fmt.Errorf("%w (%d more instance(s) of %q were not reloaded)", err, left, name)
					}
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return ins, joinDistinct(errs)
}

// Scale sets the number of instances of an app: new ones start on new slots, and the ones with
// the highest slots are stopped and deleted. The others are left alone.
func (s *Supervisor) Scale(name string, n int) ([]*Instance, error) {
	if n < 1 || n > config.MaxInstances {
		return nil, fmt.Errorf("%w: scale %q to %d: the count must be between 1 and %d (to stop every instance, use stop)", config.ErrInvalid, name, n, config.MaxInstances)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosing
	}
	a := s.findLocked(name)
	if a == nil || len(a.instances) == 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no app named %q (see tend ls)", ErrNotFound, name)
	}
	spec := *a.instances[0].Info().Spec
	spec.Instances = n
	sp := &spec
	kept, added, removed := s.resizeLocked(a, sp, n)
	s.mu.Unlock()
	s.changed()

	return append(added, removed...), joinDistinct(s.resize(a, sp, kept, added, removed, scaling))
}

// Action is a verb applied to selected instances.
type Action string

const (
	ActStart   Action = "start"
	ActStop    Action = "stop"
	ActRestart Action = "restart"
	ActReload  Action = "reload"
	ActDelete  Action = "delete"
)

// Do applies an action to every instance target selects, concurrently, and waits for all.
func (s *Supervisor) Do(act Action, target string) ([]*Instance, error) {
	if act == ActStart || act == ActRestart {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil, ErrClosing
		}
	}
	ins, err := s.Select(target)
	if err != nil {
		return nil, err
	}
	kind := map[Action]cmdKind{ActStart: cmdStart, ActStop: cmdStop, ActRestart: cmdRestart, ActDelete: cmdDelete}[act]
	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := kind
			if act == ActStart && in.Info().Pid != 0 {
				k = cmdRestart // PM2: start of a running app restarts it
			}
			errs[i] = in.do(command{kind: k})
		}()
	}
	wg.Wait()
	if act == ActDelete {
		for _, in := range ins {
			in.app.socks.CloseSlot(in.index)
		}
		s.mu.Lock()
		for _, in := range ins {
			s.removeLocked(in)
		}
		s.mu.Unlock()
		s.changed()
	}
	return ins, joinDistinct(errs)
}

func (s *Supervisor) removeLocked(in *Instance) {
	for ai, a := range s.apps {
		if i := slices.Index(a.instances, in); i >= 0 {
			a.instances = slices.Delete(a.instances, i, i+1)
			if len(a.instances) == 0 {
				s.apps = slices.Delete(s.apps, ai, ai+1)
			}
			return
		}
	}
}

// Signal sends sig to the main process of each selected instance.
func (s *Supervisor) Signal(target string, sig unix.Signal) error {
	ins, err := s.Select(target)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range ins {
		errs = append(errs, in.do(command{kind: cmdSignal, sig: sig}))
	}
	return joinDistinct(errs)
}

// Stdin writes line (with a newline added) to the stdin of each selected instance.
func (s *Supervisor) Stdin(target, line string) ([]*Instance, error) {
	ins, err := s.Select(target)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, in := range ins {
		errs = append(errs, in.do(command{kind: cmdStdin, line: []byte(line + "\n")}))
	}
	return ins, joinDistinct(errs)
}

// Shutdown stops and deletes every app. It reports an error if some process could not be stopped.
func (s *Supervisor) Shutdown() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_, err := s.Do(ActDelete, "all")
	// Descendants that outlived their app (setsid, then the app died) were re-parented to us;
	// nothing of ours may outlive the daemon that was told to go.
	if orphans := proc.Orphans(nil); len(orphans) > 0 {
		for _, o := range orphans {
			s.log.Warn("stopping a process an app left behind", "pid", o)
		}
		proc.SignalTree(0, orphans, unix.SIGTERM)
		if !proc.WaitGone(0, orphans, time.Second) {
			proc.SignalTree(0, orphans, unix.SIGKILL)
		}
	}
	return err
}

// Snapshot is the registry's picture of the supervisor.
func (s *Supervisor) Snapshot() state.Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := state.Registry{NextID: s.nextID}
	for _, a := range s.apps {
		if len(a.instances) == 0 {
			continue
		}
		rec := state.App{Spec: *a.instances[0].Info().Spec}
		for _, in := range append(slices.Clone(a.instances), a.removing...) {
			i := in.Info()
			rec.Instances = append(rec.Instances, state.Instance{
				ID: i.ID, Index: i.Index, Status: string(i.Status), Pid: i.Pid, StartTick: i.StartTick,
				Restarts: i.History.Restarts, Unstable: i.History.Unstable, Others: i.Others,
			})
		}
		reg.Apps = append(reg.Apps, rec)
	}
	return reg
}

// Restore brings back the apps of a registry left by a daemon that died without being told to.
// The apps are listed at once, with their ids and the status they had (errored stays errored);
// then, in the background, the processes of that daemon still running are stopped (a later issue
// adopts them instead) and the instances that were meant to run are started again.
func (s *Supervisor) Restore(reg state.Registry) {
	s.mu.Lock()
	s.nextID = max(s.nextID, reg.NextID)
	var toStart []*Instance
	for _, ra := range reg.Apps {
		spec := ra.Spec
		if err := spec.Validate(); err != nil {
			s.log.Error("cannot restore app", "app", spec.Name, "err", err)
			continue
		}
		if s.findLocked(spec.Name) != nil {
			continue
		}
		a := s.newApp(spec.Name)
		for _, ri := range ra.Instances {
			status := Stopped
			switch Status(ri.Status) {
			case Errored:
				status = Errored
			case Online, Launching, Waiting:
				// Started again once the old daemon's leftovers are gone; until then it waits,
				// rather than look stopped.
				status = Waiting
			}
			in := newInstance(s, a, ri.ID, ri.Index, &spec, History{Restarts: ri.Restarts}, status)
			s.nextID = max(s.nextID, ri.ID+1)
			a.instances = append(a.instances, in)
			switch Status(ri.Status) {
			case Online, Launching, Waiting: // not Stopping: the user was stopping or deleting it
				toStart = append(toStart, in)
			}
		}
		s.apps = append(s.apps, a)
	}
	s.mu.Unlock()
	s.changed()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in restore", "panic", fmt.Sprint(p))
			}
		}()
		var wg sync.WaitGroup
		for _, a := range reg.Apps {
			for _, i := range a.Instances {
				for _, p := range append([]state.Proc{{Pid: i.Pid, StartTick: i.StartTick}}, i.Others...) {
					if p.Pid <= 0 {
						continue
					}
					if st, err := proc.ReadStat(p.Pid); err == nil && st.StartTicks == p.StartTick && st.State != 'Z' {
						s.log.Warn("stopping a process left by the previous daemon", "app", a.Spec.Name, "pid", p.Pid)
						wg.Add(1)
						go func() { defer wg.Done(); cleanupGroup(p.Pid, &a.Spec) }()
					}
				}
			}
		}
		wg.Wait() // the old processes would still hold ports and files
		for _, in := range toStart {
			if in.Info().Status != Waiting {
				continue // the user stopped or deleted it meanwhile
			}
			go func() { _ = in.do(command{kind: cmdStart}) }()
		}
	}()
}

// Files gives access to the shared log files (for reopen on SIGUSR2).
func (s *Supervisor) Files() *logs.Files { return s.files }
