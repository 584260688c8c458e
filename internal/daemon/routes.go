package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/supervisor"
)

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathPing, d.ping)
	mux.HandleFunc("GET "+api.PathJlist, d.jlist)
	mux.HandleFunc("POST "+api.PathStart, d.start)
	mux.HandleFunc("POST "+api.PathAction+"{verb}", d.action)
	mux.HandleFunc("POST "+api.PathSignal, d.signal)
	mux.HandleFunc("POST "+api.PathScale, d.scale)
	mux.HandleFunc("POST "+api.PathMessage, d.message)
	mux.HandleFunc("POST "+api.PathStdin, d.stdin)
	mux.HandleFunc("POST "+api.PathKill, d.kill)
	mux.HandleFunc("POST "+api.PathReopen, d.reopen)
	if os.Getenv("TEND_TEST_PANIC") == "1" {
		// Lets the tests prove that a bug in one request does not take the daemon down.
		mux.HandleFunc("POST /v1/debug/panic", func(http.ResponseWriter, *http.Request) { panic("test panic") })
	}
	return d.guard(mux)
}

// guard answers every request with the daemon's version and turns a panic in a handler into a
// 500 with one line, so one bad request never takes the daemon down.
func (d *daemon) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHead, d.opts.Version)
		defer func() {
			if p := recover(); p != nil {
				d.log.Error("panic in request", "route", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeErr(w, http.StatusInternalServerError, api.KindInternal,
					fmt.Sprintf("internal error in %s: %v; see %s", r.URL.Path, p, d.paths.Log))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg, Kind: kind})
}

// fail maps an error to its HTTP status and kind in one place.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, supervisor.ErrNotFound):
		writeErr(w, http.StatusNotFound, api.KindNotFound, strings.ReplaceAll(err.Error(), supervisor.ErrNotFound.Error()+": ", ""))
	case errors.Is(err, config.ErrInvalid):
		writeErr(w, http.StatusBadRequest, api.KindInvalid, strings.TrimPrefix(err.Error(), config.ErrInvalid.Error()+": "))
	default:
		writeErr(w, http.StatusUnprocessableEntity, "failed", err.Error())
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, api.KindInvalid, "bad request body: "+err.Error())
		return false
	}
	return true
}

func (d *daemon) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, api.Ping{Version: d.opts.Version, Pid: os.Getpid(), Home: d.opts.Home})
}

// jlist is the hot read path: the encoded list is kept until something changes (an instance's
// state, or a new sample of cpu and memory), so most calls are a copy of bytes.
func (d *daemon) jlist(w http.ResponseWriter, r *http.Request) {
	d.lastRead.Store(time.Now().UnixNano())
	gen := d.gen.Load()
	d.jmu.Lock()
	body := d.jcache
	if d.jgen != gen || body == nil {
		infos := d.sup.List()
		counts := map[string]int{}
		for _, i := range infos {
			counts[i.Name]++
		}
		out := make([]api.Process, 0, len(infos))
		for _, i := range infos {
			out = append(out, toProcess(i, d.sampler.Get(i.Pid), counts[i.Name], d.opts.Version))
		}
		var err error
		if body, err = json.Marshal(out); err != nil {
			d.jmu.Unlock()
			fail(w, err)
			return
		}
		body = append(body, '\n')
		d.jcache, d.jgen = body, gen
	}
	d.jmu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (d *daemon) start(w http.ResponseWriter, r *http.Request) {
	var req api.StartRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Apps) == 0 {
		writeErr(w, http.StatusBadRequest, api.KindInvalid, "no apps to start")
		return
	}
	seen := map[string]bool{}
	for i := range req.Apps {
		if err := d.sup.Check(&req.Apps[i]); err != nil {
			fail(w, err)
			return
		}
		if seen[req.Apps[i].Name] {
			writeErr(w, http.StatusBadRequest, api.KindInvalid, fmt.Sprintf("app name %q appears twice; names must be unique", req.Apps[i].Name))
			return
		}
		seen[req.Apps[i].Name] = true
	}
	switch req.Mode {
	case "", "restart", "reload":
	default:
		writeErr(w, http.StatusBadRequest, api.KindInvalid, fmt.Sprintf("unknown mode %q (restart or reload)", req.Mode))
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
	if err := errors.Join(errs...); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}

func (d *daemon) action(w http.ResponseWriter, r *http.Request) {
	act := supervisor.Action(r.PathValue("verb"))
	switch act {
	case supervisor.ActStart, supervisor.ActStop, supervisor.ActRestart, supervisor.ActDelete, supervisor.ActReload:
	default:
		writeErr(w, http.StatusNotFound, api.KindNotFound, fmt.Sprintf("unknown action %q", act))
		return
	}
	var req api.TargetRequest
	if !decode(w, r, &req) {
		return
	}
	if act == supervisor.ActReload {
		answerIDs(w)(d.sup.Reload(req.Target))
		return
	}
	answerIDs(w)(d.sup.Do(act, req.Target))
}

// answerIDs writes what an action touched, or its error.
func answerIDs(w http.ResponseWriter) func([]*supervisor.Instance, error) {
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

func (d *daemon) scale(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if decode(w, r, &req) {
		answerIDs(w)(d.sup.Scale(req.Name, req.Count))
	}
}

func (d *daemon) message(w http.ResponseWriter, r *http.Request) {
	var req api.MessageRequest
	if decode(w, r, &req) {
		answerIDs(w)(d.sup.Message(req.Target, req.Message))
	}
}

func (d *daemon) stdin(w http.ResponseWriter, r *http.Request) {
	var req api.StdinRequest
	if decode(w, r, &req) {
		answerIDs(w)(d.sup.Stdin(req.Target, req.Line))
	}
}

func (d *daemon) signal(w http.ResponseWriter, r *http.Request) {
	var req api.TargetRequest
	if !decode(w, r, &req) {
		return
	}
	sig, err := config.ParseSignal(req.Signal)
	if err != nil {
		writeErr(w, http.StatusBadRequest, api.KindInvalid, err.Error())
		return
	}
	if err := d.sup.Signal(req.Target, sig); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}

func (d *daemon) kill(w http.ResponseWriter, r *http.Request) {
	// Stop everything before answering, so that `tend kill && tend start …` never meets the
	// old daemon.
	d.ln.Close() // no new requests reach a daemon on its way out
	err := d.sup.Shutdown()
	if err != nil {
		fail(w, err)
	} else {
		writeJSON(w, api.ActionResult{})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	d.requestStop("kill requested")
}

func (d *daemon) reopen(w http.ResponseWriter, r *http.Request) {
	if err := d.sup.Files().Reopen(); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, api.ActionResult{})
}
