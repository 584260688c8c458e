package config

import (
	"path/filepath"
	"strings"
)

// ParseProcfile reads a Procfile as foreman does: one app a line, `type: command`, named by its
// process type, the command run through the shell (so `web: PORT=3000 node app.js` starts an
// app named web with PORT set); blank lines and # comments are skipped.
func ParseProcfile(data []byte, file string) ([]AppSpec, error) {
	var specs []AppSpec
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		if !ok || name == "" || cmd == "" {
			return nil, invalidf("Procfile %s:%d: %q is not `type: command`", file, i+1, line)
		}
		if first, dup := seen[name]; dup {
			return nil, invalidf("Procfile %s:%d: %s is already the type of line %d; types must be unique", file, i+1, name, first)
		}
		seen[name] = i + 1
		s, err := appFromMap(map[string]any{"name": name, "script": cmd}, filepath.Dir(file))
		if err != nil {
			return nil, invalidf("Procfile %s:%d: %v", file, i+1, err)
		}
		if !strings.ContainsAny(cmd, " \t") {
			// A bare word runs through the shell too (foreman's sh -c), which finds it on PATH.
			s.Script = cmd + " "
		}
		s.CreatedFromFile = file
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, invalidf("Procfile %s has no process types (lines like `web: node app.js`)", file)
	}
	return specs, nil
}
