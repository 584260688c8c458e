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
// at its first), with the line of the app in a JSON file; and how many apps it read. The
// problems name the file as path does; file is where it is read.
func Validate(path, file string) (problems []Problem, apps int) {
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
	data, err := loadJSON(path, abs)
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
	var lines []int
	if strings.EqualFold(filepath.Ext(abs), ".json") {
		lines = appLines(data)
	}
	seen := map[string]string{}
	for i, item := range list {
		where := path
		if i < len(lines) {
			where = fmt.Sprintf("%s:%d", path, lines[i])
		}
		app := fmt.Sprintf("apps[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			problems = append(problems, Problem{Where: where, App: app, Msg: "not an object"})
			continue
		}
		if n, ok := m["name"].(string); ok {
			app += fmt.Sprintf(" %q", n)
		}
		spec, err := appFromMap(m, filepath.Dir(abs))
		if err == nil {
			err = Resolve(&spec, spec.Cwd)
		}
		if err != nil {
			problems = append(problems, Problem{Where: where, App: app, Msg: strings.TrimPrefix(err.Error(), "invalid: ")})
			continue
		}
		for _, k := range spec.IgnoredKeys {
			problems = append(problems, Problem{Where: where, App: app, Msg: "key tend does not support yet, ignored: " + k, Warning: true})
		}
		if other, dup := seen[spec.Name]; dup {
			problems = append(problems, Problem{Where: where, App: app, Msg: fmt.Sprintf("the name %q is %s's too; names must be unique", spec.Name, other)})
		}
		seen[spec.Name] = fmt.Sprintf("apps[%d]", i)
	}
	return problems, len(list)
}

// appList is the app objects of a decoded config, as ParseApps takes them.
func appList(top any) []any {
	switch t := top.(type) {
	case map[string]any:
		switch apps := t["apps"].(type) {
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

// appLines is the line on which each app object of a JSON config begins.
func appLines(data []byte) []int {
	dec := json.NewDecoder(bytes.NewReader(data))
	lineAt := func(off int64) int { return bytes.Count(data[:off], []byte{'\n'}) + 1 }
	var lines []int
	depth := 0
	inApps := false
	bare := bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) // an array of apps, no "apps" key
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return lines
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				// An app starts at depth 1 in a bare array, or at depth 2 under "apps".
				if v == '{' && (inApps && depth == 2 || bare && depth == 1) {
					lines = append(lines, lineAt(off+int64(bytes.IndexByte(data[off:], '{'))))
				}
				depth++
			default:
				depth--
			}
		case string:
			if depth == 1 && v == "apps" && !inApps {
				inApps = true
			}
		}
	}
}
