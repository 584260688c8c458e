package config

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadOptions say how a config's apps are made ready to start.
type LoadOptions struct {
	Environ map[string]string // the caller's environment, under each app's own
	EnvName string            // --env: env_<name> over env, and the name for append_env_to_name
	Only    []string          // --only: these apps of the file (by the name in the file, or the one --env gave)
	Stdin   []byte            // the config itself, for "-" (JSON; its paths from Dir)
	Dir     string            // where "-" is read from: relative paths start there
	Display string            // the file's name in messages ("" is the path)
}

// Load reads the config at path (or o.Stdin when path is "-") into the apps the daemon takes:
// selected, named, with their environment, resolved. Every error is one line that names the
// file, and where the format tells the line, the app and the key. The warnings are lines for the
// user: keys ignored, keys with no effect, an --env no app has.
func Load(path string, o LoadOptions) (apps []AppSpec, warnings []string, err error) {
	var specs []AppSpec
	var loc locator
	display := cmp.Or(o.Display, path)
	if path == "-" {
		display = "(stdin)"
		loc = jsonLocator(o.Stdin)
		specs, err = parseApps(o.Stdin, display, filepath.Join(o.Dir, "(stdin)"), loc)
	} else {
		specs, loc, err = loadFile(display, path)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(o.Only) > 0 {
		var missing []string
		for _, n := range o.Only {
			if !slices.ContainsFunc(specs, func(s AppSpec) bool {
				name := cmp.Or(s.Name, defaultName(s.Script))
				return name == n || s.AppendEnvToName && name+"-"+o.EnvName == n
			}) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			var have []string
			for _, s := range specs {
				have = append(have, cmp.Or(s.Name, defaultName(s.Script)))
			}
			return nil, nil, invalidf("--only %s: %s has no app named %s (it has %s)", strings.Join(o.Only, ","), display, strings.Join(missing, ", "), strings.Join(have, ", "))
		}
	}
	found := false
	var inert []string
	seen := map[string]int{}
	for i, s := range specs {
		if under, ok := s.DeployEnv[o.EnvName]; ok && o.EnvName != "" {
			s.Env = MergeEnv(under, s.Env)
			found = true
		}
		if over, ok := s.EnvFor[o.EnvName]; ok && o.EnvName != "" {
			s.Env = MergeEnv(s.Env, over)
			found = true
		}
		s.DeployEnv = nil
		base := cmp.Or(s.Name, defaultName(s.Script))
		if s.AppendEnvToName && o.EnvName != "" {
			s.Name = base + "-" + o.EnvName // PM2's append_env_to_name
		}
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.Name) && !slices.Contains(o.Only, base) {
			continue
		}
		s.EnvFor = nil
		s.ConfigEnv = s.Env
		s.Env = MergeEnv(s.FilterEnv.Apply(o.Environ), s.Env)
		label := fmt.Sprintf("apps[%d]", i)
		if err := Resolve(&s, s.Cwd); err != nil {
			return nil, nil, fmt.Errorf("%w: config file %s: %s %q: %s", ErrInvalid, at(display, loc, i, errKey(err)), label, s.Name, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		label += fmt.Sprintf(" %q", s.Name)
		if j, dup := seen[s.Name]; dup {
			return nil, nil, invalidf("config file %s: %s: the name %q is apps[%d]'s too; names must be unique", at(display, loc, i, "name"), label, s.Name, j)
		}
		seen[s.Name] = i
		for _, n := range s.Notes {
			warnings = append(warnings, fmt.Sprintf("note: %s: %s: %s", display, label, n))
		}
		if len(s.IgnoredKeys) > 0 {
			warnings = append(warnings, fmt.Sprintf("warning: %s: %s: unknown keys, ignored: %s", display, label, strings.Join(s.IgnoredKeys, ", ")))
		}
		inert = append(inert, s.InertKeys...)
		apps = append(apps, s)
	}
	// Said once per file, not per app: a config that sets vizion on every app is common.
	if slices.Sort(inert); len(inert) > 0 {
		warnings = append(warnings, fmt.Sprintf("note: %s: %s accepted; no effect in tend", display, strings.Join(slices.Compact(inert), ", ")))
	}
	if o.EnvName != "" && !found {
		warnings = append(warnings, fmt.Sprintf("warning: %s: no app has env_%s and no deploy has %s; --env %s changes nothing", display, o.EnvName, o.EnvName, o.EnvName))
	}
	return apps, warnings, nil
}

// AppRef is an app of a config as stop and delete find it: the name it runs under, and its
// script as an absolute path when the script is a file ("" for a command).
type AppRef struct {
	Name   string
	Script string
}

// Refs are a config's apps as Load names them (--env with append_env_to_name), without
// resolving them: what stop and delete of a config act on, even once their files are gone.
// A path of "-" reads o.Stdin, as Load does.
func Refs(path string, o LoadOptions) ([]AppRef, error) {
	var specs []AppSpec
	var err error
	if path == "-" {
		specs, err = parseApps(o.Stdin, "(stdin)", filepath.Join(o.Dir, "(stdin)"), jsonLocator(o.Stdin))
	} else {
		specs, _, err = loadFile(cmp.Or(o.Display, path), path)
	}
	if err != nil {
		return nil, err
	}
	var out []AppRef
	for _, s := range specs {
		base := cmp.Or(s.Name, defaultName(s.Script))
		name := base
		if s.AppendEnvToName && o.EnvName != "" {
			name += "-" + o.EnvName
		}
		if len(o.Only) > 0 && !slices.Contains(o.Only, name) && !slices.Contains(o.Only, base) {
			continue
		}
		script := strings.TrimSpace(s.Script)
		switch {
		case strings.ContainsAny(script, " \t") || !strings.Contains(script, "/") && !fileExists(filepath.Join(s.Cwd, script)):
			script = "" // a command line, or a command on PATH
		case !filepath.IsAbs(script):
			script = filepath.Join(s.Cwd, script)
		}
		out = append(out, AppRef{Name: name, Script: script})
	}
	return out, nil
}

// SameFile reports whether two paths name one file: equal, or equal once symlinks are followed
// (a config reached through a link to its folder).
func SameFile(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// defaultName is the name Resolve gives an app without one: the script's file name without its
// extension, or a command line's first word.
func defaultName(script string) string {
	raw := strings.TrimSpace(script)
	if f := strings.Fields(raw); len(f) > 1 {
		return filepath.Base(f[0])
	}
	base := filepath.Base(raw)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
