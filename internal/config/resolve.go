package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Resolve turns a spec as the user wrote it (script relative to cwd or a command on PATH, an
// interpreter name or nothing) into a runnable one: absolute paths, the interpreter chosen by the
// script's extension, and a default name. callerCwd is where relative paths start; PATH is taken
// from spec.Env so that the app's own PATH decides, as it will when it runs.
func Resolve(spec *AppSpec, callerCwd string) error {
	if err := resolve(spec, callerCwd); err != nil {
		return err
	}
	if spec.ExecMode == "" {
		// PM2's rule: instances without an explicit mode mean cluster mode for Node-like
		// runtimes; for the others, a port tend holds does.
		spec.ExecMode = ForkMode
		if spec.IsNodeLike() || len(spec.Ports) > 0 {
			spec.ExecMode = ClusterMode
		}
	}
	spec.portEnv()
	for _, w := range spec.Watch {
		p := w
		if !filepath.IsAbs(p) {
			p = filepath.Join(spec.Cwd, p)
		}
		if _, err := os.Stat(p); err != nil {
			return resolveErr("watch", "watch path %s does not exist (it is relative to the app's folder, %s)", p, spec.Cwd)
		}
	}
	if !spec.NoSourceMaps && !spec.SourceMaps && fileExists(spec.Script+".map") {
		spec.SourceMaps = true // PM2 turns source maps on when the script comes with its map
	}
	if spec.NoSourceMaps {
		spec.SourceMaps = false
	}
	if spec.SourceMaps && spec.InterpreterLabel == "node" && !slices.Contains(spec.InterpreterArgs, "--enable-source-maps") {
		spec.InterpreterArgs = append(spec.InterpreterArgs, "--enable-source-maps")
	}
	return spec.Validate()
}

// portEnv puts the app's port into PORT, as PM2 does, unless the env sets it: apps that read it
// keep working. An app that inherits its socket must not also be told to bind the port itself.
func (spec *AppSpec) portEnv() {
	if _, set := spec.Env["PORT"]; !set && len(spec.Ports) > 0 && !spec.ListenFds() && !spec.ProxyMode() {
		spec.Env["PORT"] = strconv.Itoa(spec.Ports[0].Port)
	}
}

// UpdateEnv gives the app the caller's environment environ (`--update-env`): what the app's
// config set stays on top, and what the old environment had that neither has is gone.
func (spec *AppSpec) UpdateEnv(environ map[string]string) {
	spec.Env = MergeEnv(spec.FilterEnv.Apply(environ), spec.ConfigEnv)
	spec.portEnv()
}

func resolve(spec *AppSpec, callerCwd string) error {
	if spec.Cwd == "" {
		spec.Cwd = callerCwd
	} else if !filepath.IsAbs(spec.Cwd) {
		spec.Cwd = filepath.Join(callerCwd, spec.Cwd)
	}
	if st, err := os.Stat(spec.Cwd); err != nil || !st.IsDir() {
		return resolveErr("cwd", "cwd %s is not a directory", spec.Cwd)
	}
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	pathVar := spec.Env["PATH"]
	raw := strings.TrimSpace(spec.Script)
	if raw == "" {
		return resolveErr("script", "no script given; try: tend start app.js")
	}

	candidate := raw
	if !filepath.IsAbs(candidate) {
		candidate = filepath.Join(spec.Cwd, candidate)
	}
	st, statErr := os.Stat(candidate)
	switch {
	case statErr == nil && st.IsDir():
		return resolveErr("script", "script %s is a directory; name the file to run", candidate)
	case statErr == nil:
		spec.Script = candidate
	case strings.ContainsAny(raw, " \t") && spec.Interpreter == "":
		// PM2 runs a command line such as "npm run start" through bash -c.
		bash, err := lookPathIn("bash", pathVar)
		if err != nil {
			return resolveErr("script", "cannot run command %q: bash not found in PATH", raw)
		}
		spec.Script = raw
		spec.ScriptIsCommand = true
		spec.Interpreter = bash
		spec.InterpreterLabel = "bash"
		if spec.Name == "" {
			spec.Name = filepath.Base(strings.Fields(raw)[0])
		}
		return nil
	case !strings.Contains(raw, "/"):
		found, err := lookPathIn(raw, pathVar)
		if err != nil {
			return resolveErr("script", "script not found: %s (no such file, and no command %q on PATH)", candidate, raw)
		}
		spec.Script = found
	default:
		return resolveErr("script", "script not found: %s", candidate)
	}

	if spec.Name == "" {
		base := filepath.Base(spec.Script)
		spec.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return resolveInterpreter(spec, pathVar)
}

func resolveInterpreter(spec *AppSpec, pathVar string) error {
	want := strings.TrimSpace(spec.Interpreter)
	if want == "" {
		want = interpreterFor(spec.Script)
		if want == "none" {
			want = shebangRuntime(spec.Script)
		}
	}
	if want == "ts" {
		if _, err := lookPathIn("bun", pathVar); err != nil {
			return resolveErr("interpreter", "cannot run TypeScript file %s: bun is not installed (install it from bun.sh) or pass --interpreter", spec.Script)
		}
		want = "bun"
	}
	if want == "none" {
		if err := unix.Access(spec.Script, unix.X_OK); err != nil {
			return resolveErr("script", "script %s is not executable; chmod +x it or pass --interpreter", spec.Script)
		}
		spec.Interpreter = ""
		spec.InterpreterLabel = "none"
		return nil
	}
	path, err := lookPathIn(want, pathVar)
	if err != nil {
		return resolveErr("interpreter", "interpreter %q for %s not found in PATH; install it or pass --interpreter", want, spec.Script)
	}
	spec.Interpreter = path
	spec.InterpreterLabel = filepath.Base(want)
	switch spec.InterpreterLabel {
	case "node", "bun", "deno":
		spec.NodeIPC = true
	case "python", "python3":
		// PM2 users lose Python prints to block buffering (research/pm2.md §5, pain 5).
		if _, ok := spec.Env["PYTHONUNBUFFERED"]; !ok {
			spec.Env["PYTHONUNBUFFERED"] = "1"
		}
	}
	return nil
}

// shebangRuntime is "node" or "bun" for a script without an extension whose #! line names one
// (next's, express's bin/www), as PM2 runs them with node in cluster mode; else "none".
func shebangRuntime(script string) string {
	f, err := os.Open(script)
	if err != nil {
		return "none"
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return "none"
	}
	words := strings.Fields(rest)
	if len(words) > 0 && filepath.Base(words[0]) == "env" {
		words = words[1:]
		if len(words) > 0 && words[0] == "-S" {
			words = words[1:]
		}
	}
	if len(words) > 0 {
		switch b := filepath.Base(words[0]); b {
		case "node", "bun":
			return b
		}
	}
	return "none"
}

func interpreterFor(script string) string {
	switch strings.ToLower(filepath.Ext(script)) {
	case ".js", ".cjs", ".mjs":
		return "node"
	case ".py":
		return "python3"
	case ".sh":
		return "bash"
	case ".ts", ".tsx", ".mts", ".cts":
		return "ts"
	}
	return "none"
}

// IsNodeLike reports whether the interpreter speaks Node's IPC and cluster protocols.
func (s *AppSpec) IsNodeLike() bool {
	switch s.InterpreterLabel {
	case "node", "bun", "deno":
		return true
	}
	return false
}

func lookPathIn(file, pathVar string) (string, error) {
	if strings.Contains(file, "/") {
		if isExecutable(file) {
			return filepath.Abs(file)
		}
		return "", fs.ErrNotExist
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if isExecutable(p) {
			return filepath.Abs(p)
		}
	}
	return "", errors.New("not found")
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && unix.Access(p, unix.X_OK) == nil
}

// Command returns the argv that runs the spec.
func (s *AppSpec) Command() []string {
	var argv []string
	if s.ScriptIsCommand {
		line := s.Script
		for _, a := range s.Args {
			line += " " + shellQuote(a)
		}
		return []string{s.Interpreter, "-c", line}
	}
	if s.Interpreter != "" {
		argv = append(argv, s.Interpreter)
		argv = append(argv, s.InterpreterArgs...)
	}
	argv = append(argv, s.Script)
	return append(argv, s.Args...)
}

func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~!") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// Describe is a short form of the command for messages.
func (s *AppSpec) Describe() string { return fmt.Sprint(s.Command()) }

// resolveErr is a Resolve error about one key of the app (the message as for any start): a
// config's loader finds the key's line.
func resolveErr(key, format string, a ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, a...)}
}
