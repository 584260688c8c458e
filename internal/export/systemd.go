package export

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// systemd is one unit per app: <name>.service, or the template <name>@.service for several
// instances (enable <name>@0 … <name>@N-1; %i is the instance number, as NODE_APP_INSTANCE). An
// app that takes its port as an inherited socket (--port) gets a <name>.socket beside it, which
// systemd passes as fd 3 (LISTEN_FDS) the way tend does.
func systemd(apps []app) []File {
	var files []File
	for _, a := range apps {
		s := a.spec
		unit := a.name + ".service"
		if a.instances > 1 {
			unit = a.name + "@.service"
		}
		var b strings.Builder
		b.WriteString("# " + unit + ", exported by tend from app " + a.name + "\n")
		if a.instances > 1 {
			fmt.Fprintf(&b, "# %d instances: systemctl enable --now %s@{0..%d}\n", a.instances, a.name, a.instances-1)
			if a.port > 0 && !s.ListenFds() {
				a.note(fmt.Sprintf("each instance binds port %d itself: that works only if the app sets SO_REUSEPORT; else give each its own (Environment=PORT=…%%i)", a.port))
			}
		}
		b.WriteString(comments("#", a.notes))
		b.WriteString("\n[Unit]\nDescription=" + a.name)
		if a.instances > 1 {
			b.WriteString(" (instance %i)")
		}
		b.WriteString("\nAfter=network.target\n")
		sockets := len(s.Ports) > 0 && s.ListenFds()
		if sockets {
			b.WriteString("Requires=" + a.name + ".socket\nAfter=" + a.name + ".socket\n")
		}
		b.WriteString("\n[Service]\nType=simple\n")
		fmt.Fprintf(&b, "WorkingDirectory=%s\n", escapePath(s.Cwd))
		b.WriteString("ExecStart=" + execLine(s.Command()) + "\n")
		for _, k := range slices.Sorted(maps.Keys(a.env)) {
			b.WriteString("Environment=" + quoteWord(k+"="+a.env[k], false) + "\n")
		}
		if a.instances > 1 {
			fmt.Fprintf(&b, "Environment=%s=%%i\n", s.InstanceVar)
		} else {
			fmt.Fprintf(&b, "Environment=%s=0\n", s.InstanceVar)
		}
		if s.User != "" {
			b.WriteString("User=" + s.User + "\n")
		}
		if s.Group != "" {
			b.WriteString("Group=" + s.Group + "\n")
		}
		if s.Autorestart {
			b.WriteString("Restart=always\n")
		} else {
			b.WriteString("Restart=no\n")
		}
		fmt.Fprintf(&b, "RestartSec=%s\n", seconds(max(s.RestartDelay, 100*time.Millisecond)))
		if sig := s.KillSignal; sig != "" {
			b.WriteString("KillSignal=" + sig + "\n")
		}
		fmt.Fprintf(&b, "TimeoutStopSec=%s\n", seconds(s.KillTimeout))
		if !s.Treekill {
			b.WriteString("KillMode=process\n")
		}
		if s.MaxMemoryRestart > 0 {
			// systemd kills a service past MemoryMax and Restart= starts it again: tend's
			// restart, without the reload.
			b.WriteString("MemoryMax=" + strconv.FormatInt(s.MaxMemoryRestart, 10) + "\n")
		}
		if sockets {
			b.WriteString("Sockets=" + a.name + ".socket\n")
		}
		b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
		files = append(files, File{Name: unit, Content: []byte(b.String())})
		if sockets {
			var k strings.Builder
			k.WriteString("# " + a.name + ".socket, exported by tend from app " + a.name + ": the port every instance serves\n\n")
			k.WriteString("[Unit]\nDescription=" + a.name + "'s port\n\n[Socket]\n")
			for _, l := range s.Ports {
				k.WriteString("ListenStream=" + l.String() + "\n")
			}
			k.WriteString("ReusePort=true\n\n[Install]\nWantedBy=sockets.target\n")
			files = append(files, File{Name: a.name + ".socket", Content: []byte(k.String())})
		}
	}
	return files
}

// execLine is argv as ExecStart takes it: each word quoted when it must be, % and $ doubled.
func execLine(argv []string) string {
	words := make([]string, len(argv))
	for i, w := range argv {
		words[i] = quoteWord(w, true)
	}
	return strings.Join(words, " ")
}

// quoteWord quotes a word for a unit file: systemd splits on blanks, reads C escapes in double
// quotes, and expands % specifiers, and in a command line (exec) $ variables too.
func quoteWord(w string, exec bool) string {
	w = strings.ReplaceAll(w, "%", "%%")
	if exec {
		w = strings.ReplaceAll(w, "$", "$$")
	}
	if w != "" && !strings.ContainsAny(w, " \t\n\"'\\;") {
		return w
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(w) + `"`
}

// escapePath is a path for WorkingDirectory=, which takes no quotes: % doubled.
func escapePath(p string) string { return strings.ReplaceAll(p, "%", "%%") }

// seconds is d as systemd's time span, in milliseconds.
func seconds(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
