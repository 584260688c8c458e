package cli

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// PM2's selectors, as its CLI reads them: all; /regex/ over names; an app's name or the path of
// the script it runs; a namespace; an id. The daemon knows all, names, namespaces and ids; the
// regular expression and the script path are resolved here, to app names.

// isRegexTarget reports whether a target is /regex/, as PM2 tells them (and then drops every
// slash: /api\/v1/ is "apiv1", as in PM2).
func isRegexTarget(t string) bool {
	return len(t) >= 2 && t[0] == '/' && t[len(t)-1] == '/' && !config.IsID(t)
}

func targetRegexp(t string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(strings.ReplaceAll(t, "/", ""))
	if err != nil {
		return nil, usagef("%s is not a regular expression tend can read: %v", t, err)
	}
	return re, nil
}

// selectProcs applies a selector to the list.
func selectProcs(procs []api.Process, target string) ([]api.Process, error) {
	return selectProcsIn(procs, target, "")
}

// selectProcsIn is selectProcs with the directory a script path is relative to ("" for none).
func selectProcsIn(procs []api.Process, target, cwd string) ([]api.Process, error) {
	if target == "all" {
		return procs, nil
	}
	if isRegexTarget(target) {
		re, err := targetRegexp(target)
		if err != nil {
			return nil, err
		}
		out := slices.DeleteFunc(slices.Clone(procs), func(p api.Process) bool { return !re.MatchString(p.Name) })
		if len(out) == 0 {
			return nil, notFoundf("no app name matches %s (see tend ls)", target)
		}
		return out, nil
	}
	script := ""
	if cwd != "" && !config.IsID(target) {
		script = filepath.Clean(abs(cwd, target))
	}
	var out []api.Process
	for _, p := range procs {
		if p.Name == target || script != "" && p.Pm2Env.PmExecPath == script {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		for _, p := range procs {
			if p.Pm2Env.Namespace == target {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 && config.IsID(target) {
		for _, p := range procs {
			if strconv.Itoa(p.PmID) == target {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		if config.IsID(target) {
			return nil, notFoundf("no process with id %s (see tend ls)", target)
		}
		return nil, notFoundf("no app named %q (see tend ls)", target)
	}
	return out, nil
}

// expandTarget turns a target the daemon does not know (a /regex/, a script path) into the
// names of the apps it selects, in list order; other targets go to the daemon as they are.
func expandTarget(c client.API, cwd, target string) ([]string, error) {
	if !isRegexTarget(target) && (config.IsID(target) || target == "all" || !strings.ContainsAny(target, "/.")) {
		return []string{target}, nil
	}
	procs, err := c.Rows()
	if err != nil {
		return nil, err
	}
	if !isRegexTarget(target) && slices.ContainsFunc(procs, func(p api.Process) bool { return p.Name == target || p.Pm2Env.Namespace == target }) {
		return []string{target}, nil
	}
	sel, err := selectProcsIn(procs, target, cwd)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range sel {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names, nil
}
