package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/state"
	"github.com/tend-sh/tend/internal/wire"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/supervisor"
)

func (d *daemon) routes() wire.Handler {
	mux := wire.NewServeMux()
	mux.HandleFunc("GET "+api.PathPing, d.ping)
	mux.HandleFunc("GET "+api.PathJlist, d.jlist)
	mux.HandleFunc("GET "+api.PathRows, d.rows)
	mux.HandleFunc("GET "+api.PathSpecs, d.specs)
	mux.HandleFunc("POST "+api.PathStart, d.start)
	mux.HandleFunc("POST "+api.PathAction+"{verb}", d.action)
	mux.HandleFunc("POST "+api.PathSignal, d.signal)
	mux.HandleFunc("POST "+api.PathScale, d.scale)
	mux.HandleFunc("POST "+api.PathMessage, d.message)
	mux.HandleFunc("POST "+api.PathStdin, d.stdin)
	mux.HandleFunc("POST "+api.PathKill, d.kill)
	mux.HandleFunc("POST "+api.PathReopen, d.reopen)
	mux.HandleFunc("POST "+api.PathUpdate, d.update)
	mux.HandleFunc("POST "+api.PathSave, d.save)
	mux.HandleFunc("POST "+api.PathRevive, d.resurrect)
	mux.HandleFunc("GET "+api.PathSettings, d.getSettings)
	mux.HandleFunc("POST "+api.PathSettings, d.setSetting)
	mux.HandleFunc("GET "+api.PathEvents, d.eventStream)
	mux.HandleFunc("GET "+api.PathMetrics, d.metrics)
	if os.Getenv("TEND_TEST_PANIC") == "1" {
		// Lets the tests prove that a bug in one request does not take the daemon down.
		mux.HandleFunc("POST /v1/debug/panic", func(wire.ResponseWriter, *wire.Request) { panic("test panic") })
	}
	return d.guard(mux)
}

// guard answers every request with the daemon's version and turns a panic in a handler into a
// 500 with one line, so one bad request never takes the daemon down.
func (d *daemon) guard(next wire.Handler) wire.Handler {
	return wire.HandlerFunc(func(w wire.ResponseWriter, r *wire.Request) {
		w.Header().Set(api.VersionHead, d.opts.Version)
		defer func() {
			if p := recover(); p != nil {
				d.log.Error("panic in request", "route", r.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeErr(w, errdefs.KindInternal, fmt.Sprintf("internal error in %s: %v; see %s", r.Path, p, d.paths.Log))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w wire.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers with an error of a wire kind; the kind decides the HTTP status, here and
// nowhere else.
func writeErr(w wire.ResponseWriter, kind, msg string) {
	status := wire.StatusUnprocessableEntity
	switch kind {
	case errdefs.KindNotFound:
		status = wire.StatusNotFound
	case errdefs.KindInvalid:
		status = wire.StatusBadRequest
	case errdefs.KindInternal:
		status = wire.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg, Kind: kind})
}

// fail answers with err: its errdefs kind on the wire, and its message without the kind's prefix.
func fail(w wire.ResponseWriter, err error) {
	kind := errdefs.Kind(err)
	msg := err.Error()
	switch kind {
	case errdefs.KindNotFound:
		msg = strings.ReplaceAll(msg, errdefs.ErrNotFound.Error()+": ", "")
	case errdefs.KindInvalid:
		msg = strings.TrimPrefix(msg, errdefs.ErrInvalid.Error()+": ")
	}
	writeErr(w, kind, msg)
}

// Request bodies: at most maxBody each, and at most bigBodies of those over a MiB decoded at a
// time (the others wait their turn, up to requestTimeout), so that concurrent large requests
// cannot take the daemon's memory (a decoded body takes some times its size).
const (
	maxBody        = 16 << 20
	bigBodies      = 2
	requestTimeout = 10 * time.Second
)

var bigBodySlots = make(chan struct{}, bigBodies)

func decode(w wire.ResponseWriter, r *wire.Request, v any) bool {
	if n, _ := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); n > maxBody {
		writeErr(w, errdefs.KindInvalid, fmt.Sprintf("request body of %d bytes: the daemon takes at most %d", n, maxBody))
		return false
	} else if n > 1<<20 {
		select {
		case bigBodySlots <- struct{}{}:
			defer func() { <-bigBodySlots }()
		case <-time.After(requestTimeout):
			writeErr(w, errdefs.KindInternal, "the daemon is busy with other large requests; try again")
			return false
		}
	}
	dec := json.NewDecoder(wire.MaxBytesReader(r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		writeErr(w, errdefs.KindInvalid, "bad request body: "+err.Error())
		return false
	}
	return true
}

func (d *daemon) ping(w wire.ResponseWriter, r *wire.Request) {
	p := api.Ping{Version: d.opts.Version, Pid: os.Getpid(), Home: d.opts.Home}
	if d.link != nil && !d.link.Gone() {
		p.Keeper = d.keeperPid
	}
	writeJSON(w, p)
}

// jlist is the hot read path: the encoded list is kept until something changes (an instance's
// state, or a new sample of cpu and memory), so most calls are a copy of bytes.
func (d *daemon) jlist(w wire.ResponseWriter, r *wire.Request) { d.serveList(w, &d.full, false) }

// rows is the list as tables and selectors read it (api.Row): no environment, no settings, so
// that `tend ls` of 200 apps decodes tens of kilobytes, not a megabyte.
func (d *daemon) rows(w wire.ResponseWriter, r *wire.Request) { d.serveList(w, &d.slim, true) }

// listCache is an encoded list and the generation it was made at, with each row's encoding: a
// row is encoded again only when its instance or its figures changed. A script that polls jlist
// while 1,000 apps start spent half the daemon's CPU encoding rows that had not changed.
type listCache struct {
	mu   sync.Mutex
	gen  uint64
	body []byte
	rows map[*supervisor.Info]cachedRow
}

// cachedRow is where one row's encoding lies in the cached body, and what it was encoded from
// besides its Info, which a change of the instance replaces.
type cachedRow struct {
	from     rowInputs
	off, end int
}

// rowInputs is what a row shows that can change while its Info stays the same: the figures of
// its Usage, the count of its app's instances, and what the Info only points to (custom
// metrics, dropped log lines, file watching).
type rowInputs struct {
	cpu       float64
	memory    int64
	procs     int
	instances int
	custom    uint64
	dropped   [2]int64
	watching  bool
}

func (d *daemon) rowInputs(i *supervisor.Info, u metrics.Usage, instances int) rowInputs {
	in := rowInputs{cpu: u.CPU, memory: u.Memory, procs: u.Procs, instances: instances,
		custom: i.Custom.Gen(), watching: i.Watching()}
	if i.Logs != nil {
		in.dropped = [2]int64{i.Logs.Dropped[0].Load(), i.Logs.Dropped[1].Load()}
	}
	return in
}

func (d *daemon) serveList(w wire.ResponseWriter, c *listCache, slim bool) {
	d.looked()
	gen := d.gen.Load()
	c.mu.Lock()
	body := c.body
	if c.gen != gen || body == nil {
		infos := d.sup.List()
		counts := map[string]int{}
		for _, i := range infos {
			counts[i.Name]++
		}
		rows := make(map[*supervisor.Info]cachedRow, len(infos))
		body = append(make([]byte, 0, len(c.body)), '[')
		for k, i := range infos {
			u := d.usage(i)
			from := d.rowInputs(i, u, counts[i.Name])
			if k > 0 {
				body = append(body, ',')
			}
			off := len(body)
			r, ok := c.rows[i]
			// cron_restart's next time moves with the clock: such a row is made every time.
			if ok && r.from == from && i.Spec.CronRestart == "" {
				body = append(body, c.body[r.off:r.end]...)
			} else {
				p := toProcess(i, u, counts[i.Name], d.opts.Version)
				var v any = p
				if slim {
					v = api.RowOf(p)
				}
				b, err := json.Marshal(v)
				if err != nil {
					c.mu.Unlock()
					fail(w, err)
					return
				}
				body = append(body, b...)
			}
			rows[i] = cachedRow{from: from, off: off, end: len(body)}
		}
		body = append(body, ']', '\n')
		c.body, c.gen, c.rows = body, gen, rows
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (d *daemon) start(w wire.ResponseWriter, r *wire.Request) {
	var req api.StartRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Apps) == 0 {
		writeErr(w, errdefs.KindInvalid, "no apps to start")
		return
	}
	seen := map[string]bool{}
	for i := range req.Apps {
		if err := d.sup.Check(&req.Apps[i]); err != nil {
			fail(w, err)
			return
		}
		if seen[req.Apps[i].Name] {
			writeErr(w, errdefs.KindInvalid, fmt.Sprintf("app name %q appears twice; names must be unique", req.Apps[i].Name))
			return
		}
		if msg := clash(d.sup.Spec(req.Apps[i].Name), &req.Apps[i]); msg != "" {
			writeErr(w, errdefs.KindInvalid, msg)
			return
		}
		seen[req.Apps[i].Name] = true
	}
	switch req.Mode {
	case "", "restart", "reload":
	default:
		writeErr(w, errdefs.KindInvalid, fmt.Sprintf("unknown mode %q (restart or reload)", req.Mode))
		return
	}
	// Ids are handed out in the order of the request (a config file's order), then the apps
	// start side by side.
	runs := make([]func() error, len(req.Apps))
	for i, spec := range req.Apps {
		add := d.sup.Add
		if req.Mode == "reload" {
			add = d.sup.AddForReload
		}
		run, err := add(spec)
		if err != nil {
			fail(w, err)
			return
		}
		runs[i] = run
	}
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("internal error starting %q: %v", req.Apps[i].Name, p)
					d.log.Error("panic in start", "app", req.Apps[i].Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
			}()
			errs[i] = run()
		}()
	}
	wg.Wait()
	if err := d.committed(errors.Join(errs...)); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}

func (d *daemon) action(w wire.ResponseWriter, r *wire.Request) {
	act := supervisor.Action(r.PathValue("verb"))
	switch act {
	case supervisor.ActStart, supervisor.ActStop, supervisor.ActRestart, supervisor.ActDelete, supervisor.ActReload, supervisor.ActReset:
	default:
		writeErr(w, errdefs.KindNotFound, fmt.Sprintf("unknown action %q", act))
		return
	}
	var req api.TargetRequest
	if !decode(w, r, &req) {
		return
	}
	var ins []*supervisor.Instance
	var err error
	if req.Env != nil && act != supervisor.ActRestart && act != supervisor.ActReload {
		writeErr(w, errdefs.KindInvalid, fmt.Sprintf("an environment goes with restart or reload, not %s", act))
		return
	}
	if req.Settings != nil && act != supervisor.ActStart && act != supervisor.ActRestart && act != supervisor.ActReload {
		writeErr(w, errdefs.KindInvalid, fmt.Sprintf("settings go with start, restart or reload, not %s", act))
		return
	}
	if req.Env != nil || req.Settings != nil || req.ToggleWatch {
		if err := d.sup.Respec(req.Target, supervisor.Change{Env: req.Env, Settings: req.Settings, ToggleWatch: req.ToggleWatch}); err != nil {
			fail(w, d.committed(err))
			return
		}
		if name, ok := req.Settings["name"].(string); ok && !config.IsID(req.Target) {
			req.Target = name // the one app the target selected has this name now
		}
	}
	if act == supervisor.ActReload {
		ins, err = d.sup.Reload(req.Target)
	} else {
		ins, err = d.sup.Do(act, req.Target)
	}
	answerIDs(w)(ins, d.committed(err))
}

// answerIDs writes what an action touched, or its error.
func answerIDs(w wire.ResponseWriter) func([]*supervisor.Instance, error) {
	return func(ins []*supervisor.Instance, err error) {
		if err != nil {
			fail(w, err)
			return
		}
		res := api.ActionResult{IDs: []int{}}
		for _, in := range ins {
			res.IDs = append(res.IDs, in.ID())
		}
		writeJSON(w, res)
	}
}

func (d *daemon) scale(w wire.ResponseWriter, r *wire.Request) {
	var req api.ScaleRequest
	if decode(w, r, &req) {
		ins, err := d.sup.Scale(req.Name, req.Count)
		answerIDs(w)(ins, d.committed(err))
	}
}

func (d *daemon) message(w wire.ResponseWriter, r *wire.Request) {
	var req api.MessageRequest
	if decode(w, r, &req) {
		answerIDs(w)(d.sup.Message(req.Target, req.Message))
	}
}

func (d *daemon) stdin(w wire.ResponseWriter, r *wire.Request) {
	var req api.StdinRequest
	if decode(w, r, &req) {
		answerIDs(w)(d.sup.Stdin(req.Target, req.Line))
	}
}

func (d *daemon) signal(w wire.ResponseWriter, r *wire.Request) {
	var req api.TargetRequest
	if !decode(w, r, &req) {
		return
	}
	sig, err := config.ParseSignal(req.Signal)
	if err != nil {
		writeErr(w, errdefs.KindInvalid, err.Error())
		return
	}
	if err := d.sup.Signal(req.Target, sig); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}

func (d *daemon) kill(w wire.ResponseWriter, r *wire.Request) {
	// Stop everything before answering, so that `tend kill && tend start …` never meets the
	// old daemon.
	d.ln.Close() // no new requests reach a daemon on its way out
	err := d.sup.Shutdown()
	if err != nil {
		fail(w, err)
	} else {
		writeJSON(w, api.ActionResult{})
	}
	if f, ok := w.(wire.Flusher); ok {
		f.Flush()
	}
	d.requestStop("kill requested")
}

// update hands the daemon's place to the binary the CLI names (tend update): the keeper starts
// it once this daemon has gone, and it adopts every app. This daemon stops nothing on its way.
func (d *daemon) update(w wire.ResponseWriter, r *wire.Request) {
	var req api.UpdateRequest
	if !decode(w, r, &req) {
		return
	}
	if d.link == nil || d.link.Gone() {
		writeErr(w, errdefs.KindInvalid, "this daemon runs without a keeper, so its apps cannot outlive it; run `tend kill` and start your apps again to use the new binary")
		return
	}
	if st, err := os.Stat(req.Exe); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 || !strings.HasPrefix(req.Exe, "/") {
		writeErr(w, errdefs.KindInvalid, fmt.Sprintf("update: %q is not an executable file given by its absolute path", req.Exe))
		return
	}
	d.ln.Close() // no new requests: the next daemon answers them
	d.link.Replace(req.Exe)
	writeJSON(w, api.ActionResult{})
	if f, ok := w.(wire.Flusher); ok {
		f.Flush()
	}
	d.requestReplace()
}

func (d *daemon) reopen(w wire.ResponseWriter, r *wire.Request) {
	if err := d.reopenLogs(); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}

// clash says why a config's app may not replace the running app of its name: another config file
// (or none) started that one with another script, as when two projects each have an "api". The
// same file, or the same script, is the app itself, to restart with its new settings.
func clash(running, next *config.AppSpec) string {
	if running == nil || next.CreatedFromFile == "" || config.SameFile(running.CreatedFromFile, next.CreatedFromFile) || config.SameFile(running.Script, next.Script) {
		return ""
	}
	from := "the command line"
	if running.CreatedFromFile != "" {
		from = running.CreatedFromFile
	}
	return fmt.Sprintf("app %q already runs %s (started from %s); %s names another script under that name: rename one of them, or `tend delete %s` first",
		next.Name, running.Script, from, next.CreatedFromFile, next.Name)
}

func (d *daemon) settingsAnswer(key string) api.Settings {
	r := d.settings.Rotate
	return api.Settings{Set: r, Effective: r.Over(config.DefaultRotate), Key: key, SecretKeys: d.settings.SecretWords(),
		Metrics: d.settings.Metrics.Effective()}
}

func (d *daemon) getSettings(w wire.ResponseWriter, r *wire.Request) {
	d.setMu.Lock()
	defer d.setMu.Unlock()
	writeJSON(w, d.settingsAnswer(""))
}

// setSetting changes one setting: written to settings.json first (a failure changes nothing and
// says so), then applied to every open log file, tend.log's too.
func (d *daemon) setSetting(w wire.ResponseWriter, r *wire.Request) {
	var req api.SettingRequest
	if !decode(w, r, &req) {
		return
	}
	d.setMu.Lock()
	defer d.setMu.Unlock()
	next := d.settings
	var key string
	var err error
	if req.Unset {
		key, err = next.Unset(req.Key)
	} else {
		key, err = next.Set(req.Key, req.Value)
	}
	if err != nil {
		fail(w, err)
		return
	}
	if next.Metrics.Listen != d.settings.Metrics.Listen {
		if err := d.serveMetrics(next.Metrics.Listen); err != nil {
			fail(w, fmt.Errorf("%w: metrics_listen not changed: %v", errdefs.ErrInvalid, err))
			return
		}
	}
	if err := state.SaveSettings(d.paths.Settings, next); err != nil {
		_ = d.serveMetrics(d.settings.Metrics.Listen)
		fail(w, fmt.Errorf("%s not changed: %w", req.Key, err))
		return
	}
	d.settings = next
	d.setMetrics(next.Metrics)
	d.sup.SetSecretWords(next.SecretKeys)
	d.sup.SetRotate(next.Rotate)
	d.ownLog.SetRotation(supervisor.LogsRotation(next.Rotate.Over(config.DefaultRotate), d.log.Warn))
	d.log.Info("setting changed", "key", req.Key, "value", req.Value, "unset", req.Unset)
	writeJSON(w, d.settingsAnswer(key))
}

// specs answers each app's settings, in creation order.
func (d *daemon) specs(w wire.ResponseWriter, r *wire.Request) {
	reg := d.sup.Snapshot()
	out := make([]config.AppSpec, 0, len(reg.Apps))
	for _, a := range reg.Apps {
		out = append(out, a.Spec)
	}
	writeJSON(w, out)
}
