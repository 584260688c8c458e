package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// readEnvFiles reads an app's env_file (a path, or a list of them, relative to the config's
// folder); later files win. A file that does not exist, or a line that does not parse, is an
// error naming the file and the line.
func readEnvFiles(v any, dir string) (map[string]string, error) {
	paths, err := stringList("env_file", v)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalidf("env_file %s does not exist", p)
		}
		if err != nil {
			return nil, invalidf("env_file %s: %v", p, err)
		}
		if err := parseDotenv(string(data), out); err != nil {
			return nil, invalidf("env_file %s%v", p, err)
		}
	}
	return out, nil
}

// parseDotenv reads the dotenv lines tools agree on: KEY=value, an optional `export `, blank
// lines and # comments (after a blank, in an unquoted value), 'single quotes' taken literally and
// "double quotes" with \n, \t, \", \\ (over several lines, too). No ${VAR} expansion. It is ours,
// not godotenv's: that one compiles three regexps at init, 0.14 ms on every CLI call, which the
// CLI's budget (DESIGN §5) has no room for.
func parseDotenv(s string, out map[string]string) error {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !validEnvKey(key) {
			return fmt.Errorf(":%d: %q is not KEY=value", n, line)
		}
		val = strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(val, "'"):
			end := strings.Index(val[1:], "'")
			if end < 0 {
				return fmt.Errorf(":%d: the ' of %s is never closed", n, key)
			}
			val = val[1 : 1+end]
		case strings.HasPrefix(val, `"`):
			body, rest := val[1:], ""
			var b strings.Builder
			closed := false
			for !closed {
				for j := 0; j < len(body); j++ {
					c := body[j]
					if c == '\\' && j+1 < len(body) {
						j++
						switch body[j] {
						case 'n':
							b.WriteByte('\n')
						case 't':
							b.WriteByte('\t')
						default:
							b.WriteByte(body[j])
						}
						continue
					}
					if c == '"' {
						closed, rest = true, body[j+1:]
						break
					}
					b.WriteByte(c)
				}
				if !closed {
					if i+1 >= len(lines) {
						return fmt.Errorf(":%d: the \" of %s is never closed", n, key)
					}
					i++
					b.WriteByte('\n')
					body = strings.TrimSuffix(lines[i], "\r")
				}
			}
			if r := strings.TrimSpace(rest); r != "" && !strings.HasPrefix(r, "#") {
				return fmt.Errorf(":%d: %q after the quoted value of %s", n, r, key)
			}
			val = b.String()
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
		}
		out[key] = val
	}
	return nil
}

func validEnvKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
