package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tend-sh/tend/internal/config"
)

// loadConfig reads an ecosystem file's apps as the daemon takes them (config.Load: selected by
// only, named, with the CLI's environment under each app's, resolved), and prints the warnings.
func loadConfig(io *IOStreams, cwd string, environ []string, target, envName, only string) ([]config.AppSpec, error) {
	o := config.LoadOptions{Environ: envMap(environ), EnvName: envName, Only: splitNames(only), Dir: cwd, Display: target}
	path := target
	if target == "-" {
		// A config on stdin (cat ecosystem.json | tend start -): JSON, its paths from the cwd.
		data, err := readConfigStdin(io)
		if err != nil {
			return nil, err
		}
		o.Stdin = data
	} else {
		path = abs(cwd, target)
	}
	specs, warnings, err := config.Load(path, o)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintln(io.ErrOut, "tend: "+w)
	}
	return specs, nil
}

// splitNames reads --only's comma-separated list.
func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// readConfigStdin reads a config given as - (cat ecosystem.json | tend start -).
func readConfigStdin(io *IOStreams) ([]byte, error) {
	data, err := readAllLimited(io.In, 16<<20)
	if err != nil {
		return nil, usagef("read the config from stdin: %v", err)
	}
	return data, nil
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
