package daemon

// This file is `tend save` and `tend resurrect` on the daemon's side: the dump in PM2's format,
// and bringing a dump's apps back.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/errdefs"
	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/state"
	"github.com/tend-sh/tend/internal/supervisor"
	"github.com/tend-sh/tend/internal/wire"
)

// save writes $TEND_HOME/dump.pm2: PM2's dump (a JSON array of pm2_env objects, one per
// instance) with tend's own field _tend beside PM2's, which holds what resurrect needs to bring
// an app back exactly (its resolved spec, id and slot).
func (d *daemon) save(w wire.ResponseWriter, r *wire.Request) {
	var req api.SaveRequest
	if !decode(w, r, &req) {
		return
	}
	infos := d.sup.List()
	if len(infos) == 0 && !req.Force {
		writeErr(w, errdefs.KindInvalid, "no app to save; `tend save --force` writes an empty dump")
		return
	}
	counts := map[string]int{}
	for _, i := range infos {
		counts[i.Name]++
	}
	entries := make([]json.RawMessage, 0, len(infos))
	for _, i := range infos {
		e, err := dumpEntry(i, counts[i.Name], d.opts.Version, d.paths.Home)
		if err != nil {
			fail(w, err)
			return
		}
		entries = append(entries, e)
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		fail(w, err)
		return
	}
	backup, err := state.WriteDump(d.paths.Dump, data)
	if err != nil {
		fail(w, fmt.Errorf("write %s: %w", d.paths.Dump, err))
		return
	}
	writeJSON(w, api.SaveResult{Path: d.paths.Dump, Count: len(infos), Backup: backup})
}

// dumpEntry is one instance as PM2 dumps it, with _tend added. pm_pid_path is its pid file:
// PM2 needs one to resurrect the entry. instances is the app's count, which jlist shows; the
// entry says 1.
func dumpEntry(i *supervisor.Info, instances int, version, homeDir string) (json.RawMessage, error) {
	env := toProcess(i, metrics.Usage{}, instances, version).Pm2Env
	if env.PmPidPath == "" {
		env.PmPidPath = filepath.Join(homeDir, "pids", fmt.Sprintf("%s-%d.pid", i.Name, i.ID))
	}
	// PM2 starts `instances` processes for each entry of its dump, and writes one entry per
	// process: an entry stands for its own instance only.
	env.Instances = 1
	b, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	t, err := json.Marshal(api.DumpTend{V: config.DumpVersion, Spec: *i.Spec, ID: i.ID, Index: i.Index, Sum: config.DumpSum(fields)})
	if err != nil {
		return nil, err
	}
	// pm2_env has its own MarshalJSON (its env copied to the top level): _tend goes in after.
	return append(append(append(b[:len(b)-1:len(b)-1], `,"_tend":`...), t...), '}'), nil
}

// resurrect brings back the apps of a dump the CLI read: those of a name that already runs are
// left alone, as PM2 does; an id in use is given another.
func (d *daemon) resurrect(w wire.ResponseWriter, r *wire.Request) {
	var reg state.Registry
	if !decode(w, r, &reg) {
		return
	}
	used := map[int]bool{}
	names := map[string]bool{}
	next := 0
	for _, i := range d.sup.List() {
		used[i.ID], names[i.Name] = true, true
		next = max(next, i.ID+1)
	}
	for _, a := range reg.Apps {
		for _, in := range a.Instances {
			next = max(next, in.ID+1)
		}
	}
	var res api.ResurrectResult
	var apps []state.App
	for _, a := range reg.Apps {
		if err := a.Spec.Validate(); err != nil {
			fail(w, fmt.Errorf("app %q: %w", a.Spec.Name, err))
			return
		}
		if names[a.Spec.Name] {
			res.Skipped = append(res.Skipped, a.Spec.Name)
			continue
		}
		names[a.Spec.Name] = true
		for k := range a.Instances {
			in := &a.Instances[k]
			if in.ID < 0 || used[in.ID] {
				in.ID = next
				next++
			}
			used[in.ID] = true
			in.Pid, in.StartTick, in.Others = 0, 0, nil // processes of another life
			res.IDs = append(res.IDs, in.ID)
		}
		apps = append(apps, a)
	}
	slices.Sort(res.IDs)
	if len(apps) > 0 {
		d.sup.Restore(state.Registry{NextID: next, Apps: apps}, supervisor.Kept{})
		if err := d.commit(); err != nil {
			fail(w, err)
			return
		}
	}
	writeJSON(w, res)
}
