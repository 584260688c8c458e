package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IsConfigFile follows PM2's rule: JSON and YAML files and *.config.{js,cjs,mjs} are app lists;
// any other .js file is an app.
func IsConfigFile(path string) bool {
	if filepath.Base(path) == "Procfile" {
		return true
	}
	p := strings.ToLower(path)
	for _, suf := range []string{".json", ".yaml", ".yml", ".config.js", ".config.cjs", ".config.mjs"} {
		if strings.HasSuffix(p, suf) {
			return true
		}
	}
	return false
}

// nodeLoader prints a JS config module as JSON. It tries require() first (CommonJS, and ESM on
// Nodes that can require it), then import(), and accepts both `module.exports = {apps}` and
// `export default {apps}` (which PM2 ignores, research/pm2.md §2).
const nodeLoader = `
const p = process.argv[1];
(async () => {
  let m;
  // A .json file that is not JSON: PM2 evaluates it as a JavaScript expression (comments,
  // trailing commas, unquoted keys).
  if (process.argv[2] === 'expr') m = require('vm').runInThisContext('(' + require('fs').readFileSync(p, 'utf8') + '\n)', { filename: p });
  else try { m = require(p); } catch (e) {
    if (!/ERR_REQUIRE_ESM|ERR_REQUIRE_ASYNC_MODULE|Cannot use import statement|Unexpected token 'export'/.test(String(e && (e.code || '') + (e.message || '')))) throw e;
    m = await import(require('url').pathToFileURL(p).href);
  }
  if (m && m.default && !m.apps) m = m.default;
  process.stdout.write(JSON.stringify(m === undefined ? null : m));
})().catch((e) => {
  // Name the line: a SyntaxError's stack starts with "file:line"; a thrown error names it in a frame.
  const stack = String(e && e.stack || '');
  const at = (e instanceof SyntaxError ? stack.split('\n')[0] : (stack.split('\n').find((l) => l.includes(p)) || '')).match(/:(\d+)(:\d+)?\)?\s*$/);
  process.stderr.write((at ? 'line ' + at[1] + ': ' : '') + String(e && e.message || e).split('\n')[0]);
  process.exit(1);
});
`

// nearest is the known key closest to an unknown one (a typo: at most two edits away, and a
// third of the key), or "".
func nearest(key string, known map[string]bool) string {
	best, bestD := "", min(2, len(key)/3)+1
	for k := range known {
		if d := editDistance(key, k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// jsonPosition is ":line:column" of a JSON error, or "" (the end of the file for one cut short).
func jsonPosition(data []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		off = int64(len(data))
	}
	if off < 0 || off > int64(len(data)) {
		return ""
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Sprintf(":%d:%d", line, max(col, 1))
}

// EvalTimeout bounds the evaluation of a JS config by node.
var EvalTimeout = 30 * time.Second

// LoadFile reads an ecosystem file into unresolved specs. JS files are evaluated once by node.
// Relative scripts and cwds in the file are taken from the file's folder.
func LoadFile(path string) ([]AppSpec, error) {
	specs, _, err := loadFile(path, path)
	return specs, err
}

// loadFile is LoadFile, with how to find the line of an app's key in the file. Messages name the
// file as display does.
func loadFile(display, file string) ([]AppSpec, locator, error) {
	path := display
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, nil, err
	}
	if filepath.Base(abs) == "Procfile" {
		data, err := os.ReadFile(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: config file %s: %v", ErrInvalid, path, unwrapPathErr(err))
		}
		specs, err := ParseProcfile(data, abs)
		return specs, procfileLocator(data), err
	}
	data, loc, err := loadJSON(path, abs)
	if err != nil {
		return nil, nil, err
	}
	specs, err := parseApps(data, path, abs, loc)
	return specs, loc, err
}

// loadJSON reads a JSON, YAML or JS config as JSON (a JS one evaluated by node), and how to find
// the line of an app's key in the file, where its format tells.
func loadJSON(path, abs string) (data []byte, loc locator, err error) {
	switch ext := strings.ToLower(filepath.Ext(abs)); ext {
	case ".json", ".yaml", ".yml":
		data, err = os.ReadFile(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: config file %s: %v", ErrInvalid, path, unwrapPathErr(err))
		}
		if ext == ".json" {
			if !json.Valid(data) {
				// Written for PM2, which reads it as JavaScript; when node cannot read it either,
				// the JSON error (with its line) is the one to show.
				if out, err := nodeEval(path, abs, "expr"); err == nil {
					return out, jsLocator(data), nil
				}
			}
			return data, jsonLocator(data), nil
		}
		src := data
		if data, err = yamlToJSON(data, path); err != nil {
			return nil, nil, err
		}
		return data, yamlLocator(src), nil
	default:
		data, err = nodeEval(path, abs, "module")
		if err != nil {
			return nil, nil, err
		}
		if src, err := os.ReadFile(abs); err == nil {
			return data, jsLocator(src), nil
		}
	}
	return data, nil, nil
}

// nodeEval runs node on a config: as a module, or (mode "expr") a file read as one JavaScript
// expression; it prints the value as JSON.
func nodeEval(path, abs, mode string) (data []byte, err error) {
	if _, err := os.Stat(abs); err != nil {
		return nil, invalidf("config file %s: %v", path, unwrapPathErr(err))
	}
	node, lerr := exec.LookPath("node")
	if lerr != nil {
		return nil, invalidf("config file %s needs node to be read, and node is not on PATH; install Node.js or use a .json file", path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), EvalTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", nodeLoader, abs, mode)
	cmd.Dir = filepath.Dir(abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err = cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			// A config that waits on something (a server, a promise never settled).
			msg = strings.TrimSpace(fmt.Sprintf("node did not finish within %s; a config must export its apps without waiting for anything %s", EvalTimeout, msg))
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, invalidf("config file %s: %s", path, msg)
	}
	return data, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// ParseApps reads PM2's {apps: [...]} (or a single app object, or an array) from JSON.
func ParseApps(data []byte, file string) ([]AppSpec, error) {
	return parseApps(data, file, file, jsonLocator(data))
}

// parseApps reads the apps of a config read as JSON; display is the file's name in messages, and
// file its path (relative paths in it start from its folder).
func parseApps(data []byte, display, file string, loc locator) ([]AppSpec, error) {
	var top any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, invalidf("config file %s%s is not valid JSON: %v", display, jsonPosition(data, err), err)
	}
	list := appList(top)
	if len(list) == 0 {
		return nil, invalidf("config file %s has no apps (expected {\"apps\": [{\"script\": ...}]})", display)
	}
	dir := filepath.Dir(file)
	deploy, err := deployEnvs(top)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", display, err)
	}
	specs := make([]AppSpec, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, invalidf("config file %s: apps[%d] is not an object", at(display, loc, i, ""), i)
		}
		spec, err := appFromMap(m, dir)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", at(display, loc, i, errKey(err)), appLabel(i, m), err)
		}
		spec.CreatedFromFile = file
		spec.DeployEnv = deploy
		specs = append(specs, spec)
	}
	return specs, nil
}

// deployEnvs reads the env of each deploy target of a config ({"deploy": {"production":
// {"env": {...}}}}): PM2 puts it under every app's env when --env names that target.
func deployEnvs(top any) (map[string]map[string]string, error) {
	m, _ := top.(map[string]any)
	targets, _ := m["deploy"].(map[string]any)
	var out map[string]map[string]string
	for name, t := range targets {
		tm, _ := t.(map[string]any)
		env, ok := tm["env"].(map[string]any)
		if !ok {
			continue
		}
		vals, err := envValues("deploy."+name+".env", env)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]map[string]string{}
		}
		out[name] = vals
	}
	return out, nil
}

// at is "file:line" of an app's key (or the app, for key ""), or the file where no line is known.
func at(file string, loc locator, app int, key string) string {
	if loc != nil {
		if l := loc(app, key); l > 0 {
			return file + ":" + strconv.Itoa(l)
		}
	}
	return file
}

// errKey is the key an error is about, or "".
func errKey(err error) string {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Key
	}
	return ""
}

// appLabel names an app of a config in a message: apps[2] "api".
func appLabel(i int, m map[string]any) string {
	if n, ok := m["name"].(string); ok {
		return fmt.Sprintf("apps[%d] %q", i, n)
	}
	return fmt.Sprintf("apps[%d]", i)
}

func stringList(key string, v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return SplitArgs(t), nil
	case json.Number:
		return []string{t.String()}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			out = append(out, envString(e))
		}
		return out, nil
	}
	return nil, invalidf("%s must be a string or a list of strings", key)
}

// envValues turns an env object's values into strings as PM2 puts them into the environment:
// an object or a list as its JSON (PM2's JSON.stringify; keys sorted here).
func envValues(key string, env map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = envString(v)
	}
	return out, nil
}

// envString renders a value as PM2 puts it into the environment: nested objects as JSON.
func envString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// SplitArgs splits a string of arguments on blanks, honouring single and double quotes.
func SplitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out
}

// MergeEnv returns base with over on top (PM2's precedence: the caller's env, then the app's).
func MergeEnv(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// EnvList renders an env map as KEY=VALUE pairs in a stable order.
func EnvList(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}
