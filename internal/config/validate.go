package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// Problem is one thing wrong (or, with Warning, doubtful) in a config file.
type Problem struct {
	Where   string // "file:line" where it is known, else "file"
	App     string // `apps[2] "api"`, or "" for the file as a whole
	Msg     string
	Warning bool
}

func (p Problem) String() string {
	s := p.Where + ": "
	if p.Warning {
		s += "warning: "
	}
	if p.App != "" {
		s += p.App + ": "
	}
	return s + p.Msg
}

// Validate reads a config file and reports every problem of every app at once (each app stops
// at its first), on the line of the key or the app where the format tells; and how many apps it
// read. The apps are resolved in the caller's environment environ, as start resolves them. The
// problems name the file as path does; file is where it is read.
func Validate(path, file string, environ map[string]string) (problems []Problem, apps int) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return []Problem{{Where: path, Msg: err.Error()}}, 0
	}
	if filepath.Base(abs) == "Procfile" {
		specs, err := LoadFile(abs)
		if err != nil {
			return []Problem{{Where: path, Msg: strings.TrimPrefix(err.Error(), "invalid: ")}}, 0
		}
		return nil, len(specs)
	}
	data, loc, err := loadJSON(path, abs)
	if err != nil {
		return []Problem{{Where: path, Msg: strings.TrimPrefix(err.Error(), "invalid: ")}}, 0
	}
	var top any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return []Problem{{Where: path + jsonPosition(data, err), Msg: "not valid JSON: " + err.Error()}}, 0
	}
	list := appList(top)
	if len(list) == 0 {
		return []Problem{{Where: path, Msg: `no apps (expected {"apps": [{"script": ...}]})`}}, 0
	}
	if t, ok := top.(map[string]any); ok && t["deploy"] != nil && (t["apps"] != nil || t["pm2"] != nil) {
		problems = append(problems, Problem{Where: path, Msg: "deploy is PM2's deploy over ssh, which tend does not do; only its targets' env is used (under the apps' env, with --env <target>)", Warning: true})
	}
	seen := map[string]string{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			problems = append(problems, Problem{Where: at(path, loc, i, ""), App: fmt.Sprintf("apps[%d]", i), Msg: "not an object"})
			continue
		}
		app := appLabel(i, m)
		spec, err := appFromMap(m, filepath.Dir(abs))
		if err == nil {
			// Resolved as start resolves it: the caller's environment (its PATH finds node)
			// under the app's.
			spec.Env = MergeEnv(spec.FilterEnv.Apply(environ), spec.Env)
			err = Resolve(&spec, spec.Cwd)
		}
		if err != nil {
			problems = append(problems, Problem{Where: at(path, loc, i, errKey(err)), App: app, Msg: strings.TrimPrefix(err.Error(), "invalid: ")})
			continue
		}
		for _, k := range spec.IgnoredKeys {
			key, _, _ := strings.Cut(k, " (")
			problems = append(problems, Problem{Where: at(path, loc, i, key), App: app, Msg: "unknown key, ignored: " + k, Warning: true})
		}
		for _, k := range spec.InertKeys {
			problems = append(problems, Problem{Where: at(path, loc, i, k), App: app, Msg: k + " is accepted and has no effect in tend", Warning: true})
		}
		if other, dup := seen[spec.Name]; dup {
			problems = append(problems, Problem{Where: at(path, loc, i, "name"), App: app, Msg: fmt.Sprintf("the name %q is %s's too; names must be unique", spec.Name, other)})
		}
		seen[spec.Name] = fmt.Sprintf("apps[%d]", i)
	}
	return problems, len(list)
}

// appList is the app objects of a decoded config, as ParseApps takes them.
func appList(top any) []any {
	switch t := top.(type) {
	case map[string]any:
		apps := t["apps"]
		if apps == nil {
			apps = t["pm2"] // a package.json's
		}
		switch apps := apps.(type) {
		case []any:
			return apps
		case map[string]any:
			return []any{apps}
		case nil:
			if _, ok := t["script"]; ok {
				return []any{t}
			}
		}
	case []any:
		return t
	}
	return nil
}
