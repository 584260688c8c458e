package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tend-sh/tend/internal/config"
)

// loadConfig reads an ecosystem file's apps as the daemon takes them: resolved, with the CLI's
// environment under each app's env (and its env_<envName> over that, PM2's --env), and a warning
// naming the keys tend does not act on, or an --env no app has.
func loadConfig(io *IOStreams, cwd string, environ []string, target, envName string) ([]config.AppSpec, error) {
	loaded, err := config.LoadFile(abs(cwd, target))
	if err != nil {
		return nil, err
	}
	specs := make([]config.AppSpec, 0, len(loaded))
	found := false
	for _, s := range loaded {
		if len(s.IgnoredKeys) > 0 {
			fmt.Fprintf(io.ErrOut, "tend: warning: %s: app %q: ignoring keys tend does not support yet: %s\n",
				target, s.Name, strings.Join(s.IgnoredKeys, ", "))
		}
		if over, ok := s.EnvFor[envName]; ok && envName != "" {
			s.Env = config.MergeEnv(s.Env, over)
			found = true
		}
		s.EnvFor = nil
		s.Env = config.MergeEnv(envMap(environ), s.Env)
		if err := config.Resolve(&s, s.Cwd); err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		specs = append(specs, s)
	}
	if envName != "" && !found {
		fmt.Fprintf(io.ErrOut, "tend: warning: %s: no app has env_%s; --env %s changes nothing\n", target, envName, envName)
	}
	return specs, nil
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
