package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
)

// DumpVersion is the shape of tend's field in the dumps it writes.
const DumpVersion = 1

// DumpApp is one app of a dump (tend save's, or PM2's dump.pm2) as resurrect brings it back.
type DumpApp struct {
	Spec AppSpec
	// Resolved says Spec came from tend's own field and is ready; a PM2 entry's is still to be
	// resolved, as an ecosystem file's app is.
	Resolved  bool
	Instances []DumpInstance
}

// DumpInstance is one instance: its id (-1 when the dump has none, as PM2's), slot and status.
type DumpInstance struct {
	ID     int
	Index  int
	Status string
}

// pm2Keys maps the pm2_env keys of PM2's dump that name an app's settings to the ecosystem
// file's keys; the rest of an entry is PM2's runtime state, and the top-level copies of env.
var pm2Keys = map[string]string{
	"name": "name", "namespace": "namespace", "pm_exec_path": "script", "args": "args",
	"pm_cwd": "cwd", "exec_interpreter": "interpreter", "node_args": "node_args",
	"exec_mode": "exec_mode", "env": "env", "autorestart": "autorestart",
	"max_restarts": "max_restarts", "min_uptime": "min_uptime", "kill_timeout": "kill_timeout",
	"restart_delay": "restart_delay", "exp_backoff_restart_delay": "exp_backoff_restart_delay",
	"merge_logs": "merge_logs", "pm_out_log_path": "out_file", "pm_err_log_path": "error_file",
	"pm_log_path": "log_file", "log_date_format": "log_date_format", "instance_var": "instance_var",
	"treekill": "treekill", "wait_ready": "wait_ready", "listen_timeout": "listen_timeout",
	"kill_signal": "kill_signal", "stop_exit_codes": "stop_exit_codes", "increment_var": "increment_var",
	"shutdown_with_message": "shutdown_with_message", "cron_restart": "cron_restart",
	"max_memory_restart": "max_memory_restart", "watch": "watch", "ignore_watch": "ignore_watch",
	"uid": "uid", "gid": "gid", "source_map_support": "source_map_support",
}

// DumpSum fingerprints an entry's PM2 fields (without _tend): FNV-64a over them as one JSON
// object, keys sorted and values compact, so the same fields give the same sum however a writer
// ordered or spaced them.
func DumpSum(fields map[string]json.RawMessage) string {
	b, err := json.Marshal(fields)
	if err != nil {
		return ""
	}
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// pm2Own are variables PM2 puts in every app's env for itself.
var pm2Own = map[string]bool{"unique_id": true, "PM2_USAGE": true, "PM2_INTERACTOR_PROCESSING": true}

// ParseDump reads a dump: a JSON array of pm2_env objects, one per instance. Entries written by
// tend carry _tend (the resolved spec, id and slot); PM2's are read by their pm2_env keys, and
// the instances of one name (a cluster app) become one app.
func ParseDump(data []byte, file string) ([]DumpApp, error) {
	abs, _ := filepath.Abs(file)
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, invalidf("dump %s%s cannot be read (cut short, or not a dump): %v", file, jsonPosition(data, err), err)
	}
	var apps []DumpApp
	byName := map[string]int{}
	for i, e := range entries {
		var status string
		_ = json.Unmarshal(e["status"], &status)
		var app DumpApp
		inst := DumpInstance{ID: -1, Status: status}
		var t struct {
			V     int     `json:"v"`
			Spec  AppSpec `json:"spec"`
			ID    int     `json:"pm_id"`
			Index int     `json:"index"`
			Sum   string  `json:"sum"`
		}
		raw, ours := e["_tend"]
		if ours {
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, invalidf("dump %s: entry %d: %v", file, i, err)
			}
			if t.V > DumpVersion {
				return nil, invalidf("dump %s was written by a newer tend (dump version %d; this one reads %d); resurrect it with that tend", file, t.V, DumpVersion)
			}
			// PM2 keeps a key it does not know when it saves again: an entry whose PM2 fields
			// changed since tend wrote it was saved by PM2 since, and PM2's fields are the news.
			delete(e, "_tend")
			ours = t.Sum == "" || t.Sum == DumpSum(e)
		}
		if ours {
			app = DumpApp{Spec: t.Spec, Resolved: true}
			inst.ID, inst.Index = t.ID, t.Index
		} else {
			m := map[string]any{}
			for k, v := range e {
				key, ok := pm2Keys[k]
				if !ok || string(v) == "null" {
					continue
				}
				dec := json.NewDecoder(bytes.NewReader(v))
				dec.UseNumber()
				var val any
				if err := dec.Decode(&val); err != nil {
					return nil, invalidf("dump %s: entry %d: %s: %v", file, i, k, err)
				}
				m[key] = val
			}
			// PM2's own log files (its home's logs/, beside the dump): the app moves to tend's
			// logs folder, so that PM2's folder can go. A path the user chose stays.
			for _, k := range []string{"out_file", "error_file", "log_file"} {
				if p, ok := m[k].(string); ok && filepath.Dir(p) == filepath.Join(filepath.Dir(abs), "logs") {
					delete(m, k)
				}
			}
			if env, ok := m["env"].(map[string]any); ok {
				for k, v := range env {
					switch v.(type) {
					case map[string]any, []any:
						delete(env, k) // PM2's own bookkeeping (env[<app name>] = {})
					}
					if pm2Own[k] {
						delete(env, k)
					}
				}
			}
			spec, err := appFromMap(m, "/")
			if err != nil {
				return nil, fmt.Errorf("dump %s: entry %d: %w", file, i, err)
			}
			spec.IgnoredKeys, spec.InertKeys = nil, nil // a dump holds PM2's runtime state: nothing to warn about
			app = DumpApp{Spec: spec}
		}
		if j, ok := byName[app.Spec.Name]; ok && app.Spec.Name != "" {
			if !app.Resolved {
				inst.Index = len(apps[j].Instances) // PM2 dumps its cluster's instances in order
			}
			apps[j].Instances = append(apps[j].Instances, inst)
			continue
		}
		app.Instances = []DumpInstance{inst}
		byName[app.Spec.Name] = len(apps)
		apps = append(apps, app)
	}
	for k := range apps {
		if !apps[k].Resolved {
			apps[k].Spec.Instances = len(apps[k].Instances)
		}
	}
	return apps, nil
}
