package config

import (
	"path/filepath"
	"strconv"
	"strings"
)

// LogPaths gives PM2's log file names: <name>-out.log and <name>-error.log in the logs folder,
// with -<pm_id> for the instances of a cluster-mode or multi-instance app, unless merged.
func (spec *AppSpec) LogPaths(logDir string, id int) (out, errp, combined string) {
	suffix := ""
	if spec.SeparateLogs() {
		suffix = "-" + strconv.Itoa(id)
	}
	pick := func(given, kind string) string {
		if given == "" {
			return filepath.Join(logDir, spec.Name+"-"+kind+suffix+".log")
		}
		if given == "/dev/null" || given == "NULL" {
			return "/dev/null"
		}
		if !filepath.IsAbs(given) {
			given = filepath.Join(spec.Cwd, given)
		}
		if suffix != "" {
			ext := filepath.Ext(given)
			given = strings.TrimSuffix(given, ext) + suffix + ext
		}
		return given
	}
	out, errp = pick(spec.OutFile, "out"), pick(spec.ErrFile, "error")
	switch spec.LogFile {
	case "":
	case LogFileDefault: // PM2's log_file: true
		combined = filepath.Join(logDir, spec.Name+suffix+".log")
	default:
		combined = pick(spec.LogFile, "")
	}
	return out, errp, combined
}

// SeparateLogs reports whether each instance of the app gets its own log files (PM2's -<pm_id>).
func (spec *AppSpec) SeparateLogs() bool {
	return !spec.MergeLogs && (spec.ExecMode == ClusterMode || spec.Instances > 1)
}
