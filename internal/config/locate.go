package config

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// locator is the line in the source file of an app's key (key "" is the app itself), or 0 when
// the format does not tell (a JS config, evaluated by node).
type locator func(app int, key string) int

// appPrefixes are where the apps of a config sit, as appList finds them: under "apps" (or "pm2",
// as in a package.json), a bare list, or the file as one app.
func appPrefixes(app int) []string {
	i := strconv.Itoa(app)
	p := []string{"apps." + i, "pm2." + i, i}
	if app == 0 {
		p = append(p, "apps", "pm2", "")
	}
	return p
}

// lookup finds an app's key among the lines of paths ("apps.0.name"), or the app's own line.
func lookup(lines map[string]int, app int, key string) int {
	for _, prefix := range appPrefixes(app) {
		at, ok := lines[prefix]
		if !ok {
			continue
		}
		if key != "" {
			full := key
			if prefix != "" {
				full = prefix + "." + key
			}
			if l, ok := lines[full]; ok {
				return l
			}
		}
		return at
	}
	return 0
}

// jsonLocator finds keys by walking the JSON's tokens.
func jsonLocator(data []byte) locator {
	lines := jsonLines(data)
	return func(app int, key string) int { return lookup(lines, app, key) }
}

// jsonLines maps the path of every object key and list element of a JSON document ("apps.0",
// "apps.0.env.PORT") to the line it starts on; "" is the document.
func jsonLines(data []byte) map[string]int {
	type frame struct {
		list    bool
		n       int    // elements so far, in a list
		key     string // the key being read, in an object
		wantKey bool
	}
	lineAt := func(off int64) int {
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
		return bytes.Count(data[:off], []byte{'\n'}) + 1
	}
	var stack []*frame
	path := func() string {
		parts := make([]string, 0, len(stack))
		for _, f := range stack {
			if f.list {
				parts = append(parts, strconv.Itoa(f.n))
			} else {
				parts = append(parts, f.key)
			}
		}
		return strings.Join(parts, ".")
	}
	lines := map[string]int{}
	done := func() { // a value ended
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.list {
			f.n++
		} else {
			f.wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return lines
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && !top.list && top.wantKey {
			if k, ok := tok.(string); ok {
				top.key, top.wantKey = k, false
				lines[path()] = lineAt(off)
				continue
			}
		}
		if top == nil || top.list {
			if d, ok := tok.(json.Delim); !ok || d == '{' || d == '[' {
				lines[path()] = lineAt(off)
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{list: true})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
		default:
			done()
		}
	}
}

// yamlLocator finds keys in the YAML's syntax tree.
func yamlLocator(data []byte) locator {
	f, err := parser.ParseBytes(data, 0)
	if err != nil || len(f.Docs) == 0 {
		return nil
	}
	lines := map[string]int{}
	var walk func(n ast.Node, path string)
	walk = func(n ast.Node, path string) {
		join := func(k string) string {
			if path == "" {
				return k
			}
			return path + "." + k
		}
		switch t := n.(type) {
		case *ast.MappingNode:
			lines[path] = t.GetToken().Position.Line
			for _, v := range t.Values {
				walk(v, path)
			}
		case *ast.MappingValueNode:
			if _, ok := lines[path]; !ok {
				lines[path] = t.Key.GetToken().Position.Line
			}
			k := join(strings.Trim(t.Key.String(), `"'`))
			lines[k] = t.Key.GetToken().Position.Line
			walk(t.Value, k)
			lines[k] = t.Key.GetToken().Position.Line // the key's line, not its value's
		case *ast.SequenceNode:
			for i, v := range t.Values {
				p := join(strconv.Itoa(i))
				if v != nil {
					lines[p] = v.GetToken().Position.Line
					walk(v, p)
					lines[p] = v.GetToken().Position.Line
				}
			}
		case *ast.DocumentNode:
			walk(t.Body, path)
		}
	}
	if body := f.Docs[0].Body; body != nil {
		walk(body, "")
	}
	return func(app int, key string) int { return lookup(lines, app, key) }
}

// jsLocator finds a key in a JS config's source when it is written there once (`key:`, quoted or
// not): node evaluated the file, so which app a key belongs to is not known from the text, and a
// key written in several apps gets no line rather than a wrong one.
func jsLocator(src []byte) locator {
	return func(app int, key string) int {
		if key == "" {
			return 0
		}
		key, _, _ = strings.Cut(key, ".") // env.X: the env key's line
		re, err := regexp.Compile(`(?m)(^|[^\w$.])['"]?` + regexp.QuoteMeta(key) + `['"]?\s*:`)
		if err != nil {
			return 0
		}
		m := re.FindAllIndex(src, 2)
		if len(m) != 1 {
			return 0
		}
		return bytes.Count(src[:m[0][0]], []byte{'\n'}) + 1
	}
}

// procfileLocator finds an app of a Procfile: the app's line (its keys are on it too).
func procfileLocator(data []byte) locator {
	var lines []int
	for i, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, i+1)
		}
	}
	return func(app int, key string) int {
		if app < len(lines) {
			return lines[app]
		}
		return 0
	}
}
