// Package supervisor decides what runs: apps and their instances, each owned by one goroutine
// that holds its state machine (one enforced transition table), its readiness, reloads and the
// restart policy, and drives processes through a proc.Spawner. The rest of the daemon reads
// published, immutable Infos.
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/events"
	"github.com/tend-sh/tend/internal/home"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/keeper"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/internal/state"
	"golang.org/x/sys/unix"
)

// The supervisor's error kinds are errdefs': a selector that matches nothing, and a start that
// comes after the daemon began to stop.
var (
	ErrNotFound = errdefs.ErrNotFound
	ErrClosing  = errdefs.ErrClosing
)

// Options wire a Supervisor to the daemon.
type Options struct {
	Home    string
	Spawner proc.Spawner // how processes are started and adopted
	// Adopt makes Restore take over the processes an earlier daemon left running instead of
	// stopping them.
	Adopt bool
	// Store keeps copies of the apps' listening sockets past the daemon (a keeper); nil for none.
	Store    keeper.Store
	Log      *slog.Logger
	EchoOut  io.Writer // foreground mode: apps' lines also go here
	EchoErr  io.Writer
	OnChange func() // called after any published change (cheap; the daemon debounces)
	Preload  string // tend's Node preload (drain, and sockets for unknown Nodes); "" for none
	SelfExe  string // how to run tend's exec helper in a child ("/proc/self/exe")
	// NotifySocket is the path of the daemon's sd_notify socket ("" for none).
	NotifySocket string
	// SharedPreload and SharedNotify are the preload and a readiness socket where an app of
	// another user (uid) can reach them: a root daemon's home is not open to it ("" for none).
	SharedPreload, SharedNotify string
	// Rotate is the global log rotation (tend set); unset keys take tend's defaults.
	Rotate config.RotateSettings
	// SecretWords mask arguments in tend.log (nil: the defaults).
	SecretWords []string
	// Events receives what happens to the apps (nil: nobody listens).
	Events *events.Hub
	// Clock is what cron_restart runs on (nil: the real clock).
	Clock Clock
}

// Supervisor owns the apps.
type Supervisor struct {
	home     string
	logDir   string
	files    *logs.Files
	spawner  proc.Spawner
	adopt    bool
	store    keeper.Store
	log      *slog.Logger
	echoOut  io.Writer
	echoErr  io.Writer
	onCh     func()
	events   *events.Hub
	clock    Clock
	cronWake chan struct{}
	preload  string
	selfExe  string

	sharedPreload, sharedNotify string
	claims                      *sockets.Registry
	notify                      string
	running                     sync.Map // pid → *running: whose process is whose, for readiness datagrams

	workerID atomic.Int64 // NODE_UNIQUE_ID of Node cluster workers

	nodes ipc.Nodes // which Node binaries speak a cluster protocol tend knows

	mu      sync.Mutex
	apps    []*App // in creation order
	nextID  int
	closing bool // Shutdown began: no app may be added or started any more

	dateMu sync.Mutex
	dates  map[string]*logs.DateFormat

	rmu         sync.Mutex
	rotate      config.RotateSettings // the global rotation settings (tend set)
	secretWords []string              // what masks arguments in tend.log (nil: the defaults)
}

// New returns an empty supervisor.
func New(o Options) *Supervisor {
	if o.Store == nil {
		o.Store = keeper.Nop{}
	}
	files := logs.NewFiles()
	files.NoFollowUnder = o.Home
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return &Supervisor{
		home: o.Home, logDir: home.At(o.Home).Logs, files: files, spawner: o.Spawner, adopt: o.Adopt, store: o.Store,
		log: o.Log, echoOut: o.EchoOut, echoErr: o.EchoErr, onCh: o.OnChange, events: o.Events,
		clock: o.Clock, cronWake: make(chan struct{}, 1),
		sharedPreload: o.SharedPreload, sharedNotify: o.SharedNotify,
		preload: o.Preload, selfExe: o.SelfExe, claims: sockets.NewRegistry(), notify: o.NotifySocket,
		dates: map[string]*logs.DateFormat{}, rotate: o.Rotate, secretWords: o.SecretWords,
	}
}

func (s *Supervisor) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Supervisor) changed() {
	s.wakeCron() // a new app, or a new spec, may have a cron_restart
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

// Select returns the instances a PM2 selector names: "all", an app name, a namespace or an id.
func (s *Supervisor) Select(target string) ([]*Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Instance
	switch {
	case target == "all":
		for _, a := range s.apps {
			out = append(out, a.instances...)
		}
		if len(out) == 0 {
			// PM2 fails an action on all when there is nothing: scripts rely on it.
			return nil, fmt.Errorf("%w: no process to act on: the list is empty (see tend ls)", ErrNotFound)
		}
		return out, nil
	}
	// PM2's order: an app's name, then a namespace, then an id (an app may be named 455).
	if a := s.findLocked(target); a != nil {
		return slices.Clone(a.instances), nil
	}
	for _, a := range s.apps {
		if len(a.instances) > 0 && a.instances[0].Info().Spec.Namespace == target {
			out = append(out, a.instances...)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if config.IsID(target) {
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
	return nil, fmt.Errorf("%w: no app named %q (see tend ls)", ErrNotFound, target)
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

// Spec is the spec of the app of that name, or nil.
func (s *Supervisor) Spec(name string) *config.AppSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.findLocked(name); a != nil && len(a.instances) > 0 {
		return a.instances[0].Info().Spec
	}
	return nil
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
	r, err := userOf(spec)
	if err != nil {
		return err
	}
	if err := r.checkAccess(spec); err != nil {
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
		// A start with the app's settings decides its watching: on with watch, off without.
		s.setWatching(a, sp.Autostart, sp)
		return joinDistinct(s.resize(a, sp, existing, added, removed, resizing{kept: cmdRestart, startNew: sp.Autostart}))
	}, nil
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
		s.setWatching(a, true, sp)
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
	from := len(a.instances)
	kept, added, removed := s.resizeLocked(a, sp, n)
	s.mu.Unlock()
	s.changed()
	s.events.Publish(events.Event{Kind: "scale", App: sp.Name, Namespace: sp.Namespace, From: new(from), To: new(n)})

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
	ActReset   Action = "reset" // PM2's reset: restart counters back to 0
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
	kind := map[Action]cmdKind{ActStart: cmdStart, ActStop: cmdStop, ActRestart: cmdRestart, ActDelete: cmdDelete, ActReset: cmdReset}[act]
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
	if act == ActStop || act == ActDelete {
		s.unwatchStopped(ins) // PM2: a stopped app is not watched, and jlist says so
	}
	if act == ActDelete {
		for _, in := range ins {
			in.app.socks.CloseSlot(in.index)
		}
		s.mu.Lock()
		for _, in := range ins {
			s.removeLocked(in)
		}
		for _, in := range ins {
			i := in.Info()
			s.events.Publish(events.Event{Kind: "delete", App: i.Name, Namespace: i.Spec.Namespace, ID: new(i.ID)})
		}
		if len(s.apps) == 0 {
			s.nextID = 0 // PM2 numbers from 0 again once the list is empty
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
	if errors.Is(err, ErrNotFound) {
		err = nil // nothing to stop
	}
	// Descendants that outlived their app (setsid, then the app died) were re-parented to us;
	// nothing of ours may outlive the daemon that was told to go.
	if sw, ok := s.spawner.(interface{ SweepOrphans() []int }); ok {
		for _, o := range sw.SweepOrphans() {
			s.log.Warn("stopped a process an app left behind", "pid", o)
		}
	}
	return err
}

// Snapshot is the registry's picture of the supervisor.
func (s *Supervisor) Snapshot() state.Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := state.Registry{NextID: s.nextID, WorkerID: s.workerID.Load()}
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

// Files gives access to the shared log files (for reopen on SIGUSR2).
func (s *Supervisor) Files() *logs.Files { return s.files }
