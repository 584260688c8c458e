package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tend-sh/tend/internal/config"
)

// loadConfig reads an ecosystem file's apps as the daemon takes them: resolved, with the CLI's
// environment under each app's env (and its env_<envName> over that, PM2's --env), and a warning
// naming the keys tend does not act on, or an --env no app has.
func loadConfig(io *IOStreams, cwd string, environ []string, target, envName string) ([]config.AppSpec, error) {
	var loaded []config.AppSpec
	var err error
	if target == "-" {
		// A config on stdin (cat ecosystem.json | tend start -): JSON, its paths from the cwd.
		data, rerr := readAllLimited(io.In, 16<<20)
		if rerr != nil {
			return nil, usagef("read the config from stdin: %v", rerr)
		}
		loaded, err = config.ParseApps(data, filepath.Join(cwd, "(stdin)"))
	} else {
		loaded, err = config.LoadFile(abs(cwd, target))
	}
	if err != nil {
		return nil, err
	}
	specs := make([]config.AppSpec, 0, len(loaded))
	found := false
	var inert, pending []string
	for _, s := range loaded {
		if len(s.IgnoredKeys) > 0 {
			fmt.Fprintf(io.ErrOut, "tend: warning: %s: app %q: unknown keys, ignored: %s\n",
				target, s.Name, strings.Join(s.IgnoredKeys, ", "))
		}
		inert = append(inert, s.InertKeys...)
		pending = append(pending, s.Pending()...)
		if over, ok := s.EnvFor[envName]; ok && envName != "" {
			s.Env = config.MergeEnv(s.Env, over)
			found = true
		}
		if s.AppendEnvToName && envName != "" && s.Name != "" {
			s.Name += "-" + envName // PM2's append_env_to_name
		}
		s.EnvFor = nil
		s.ConfigEnv = s.Env
		s.Env = config.MergeEnv(s.FilterEnv.Apply(envMap(environ)), s.Env)
		if err := config.Resolve(&s, s.Cwd); err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		specs = append(specs, s)
	}
	// Said once per file, not per app: a config that sets vizion on every app is common.
	if inert = sortedSet(inert); len(inert) > 0 {
		fmt.Fprintf(io.ErrOut, "tend: note: %s: %s accepted; no effect in tend\n", target, strings.Join(inert, ", "))
	}
	if pending = sortedSet(pending); len(pending) > 0 {
		fmt.Fprintf(io.ErrOut, "tend: warning: %s: %s checked but not acted on yet (a later tend release)\n", target, strings.Join(pending, ", "))
	}
	if envName != "" && !found {
		fmt.Fprintf(io.ErrOut, "tend: warning: %s: no app has env_%s; --env %s changes nothing\n", target, envName, envName)
	}
	return specs, nil
}

// sortedSet is the distinct strings of l, sorted.
func sortedSet(l []string) []string {
	slices.Sort(l)
	return slices.Compact(l)
}

// only keeps the apps --only names (a comma-separated list; "" keeps all), in the file's order.
// A name the file does not have is an error that lists the names it has.
func only(target, names string, specs []config.AppSpec) ([]config.AppSpec, error) {
	if names == "" {
		return specs, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []config.AppSpec
	var have []string
	for _, s := range specs {
		have = append(have, s.Name)
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		slices.Sort(missing)
		return nil, usagef("--only %s: %s has no app named so (it has %s)", strings.Join(missing, ","), target, strings.Join(have, ", "))
	}
	return out, nil
}

// readAllLimited reads r to its end, refusing more than limit bytes.
func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("over %d MiB", limit>>20)
	}
	return data, err
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func abs(cwd, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cwd, p)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
