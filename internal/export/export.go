// Package export turns apps into what the engines that run fleets take: systemd units,
// Kubernetes Deployments and Services, a compose file, Nomad jobs. It writes text only; it never
// guesses what it cannot know (an image, a path inside a container): it says so in a comment.
package export

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/config"
)

// File is one file of an export: its name (for --out) and its content.
type File struct {
	Name    string
	Content []byte
}

// Options are what the apps do not say.
type Options struct {
	// Image is the container image of every app (Kubernetes, compose, Nomad's docker driver);
	// "" names one <app>:latest per app and says that it must be built.
	Image string
}

// Formats are the engines, by the names `tend export` takes.
var Formats = []string{"systemd", "kubernetes", "compose", "nomad"}

// Export renders the apps for format: one file per app, or one for all (compose).
func Export(format string, specs []config.AppSpec, o Options) ([]File, error) {
	apps := make([]app, len(specs))
	for i := range specs {
		apps[i] = newApp(&specs[i])
	}
	switch format {
	case "systemd":
		return systemd(apps), nil
	case "kubernetes", "k8s":
		return kubernetes(apps, o)
	case "compose", "docker-compose":
		return compose(apps, o)
	case "nomad":
		return nomad(apps, o)
	}
	return nil, fmt.Errorf("%w: unknown export format %q; the formats are %s", config.ErrInvalid, format, strings.Join(Formats, ", "))
}

// app is an app as every format reads it.
type app struct {
	spec      *config.AppSpec
	name      string
	instances int
	env       map[string]string // the config's env (not the shell's the app was started from)
	port      int               // the port it serves, when known (--port, or PORT in its env)
	notes     []string          // what the output cannot carry, said as comments
}

func newApp(s *config.AppSpec) app {
	a := app{spec: s, name: s.Name, instances: max(s.Instances, 1), env: map[string]string{}}
	for k, v := range s.ConfigEnv {
		a.env[k] = v
	}
	if len(s.Ports) > 0 {
		a.port = s.Ports[0].Port
	} else if p, err := strconv.Atoi(a.env["PORT"]); err == nil {
		a.port = p
	}
	if s.ExecMode == config.ClusterMode && a.instances > 1 {
		a.notes = append(a.notes, fmt.Sprintf("in tend, the %d instances share one port held by the daemon; here each instance is a process of its own", a.instances))
	}
	if len(s.Watch) > 0 {
		a.notes = append(a.notes, "watch is tend's: the engine does not restart on file changes")
	}
	if s.CronRestart != "" {
		a.notes = append(a.notes, "cron_restart "+s.CronRestart+" is tend's: schedule it with the engine's own means")
	}
	return a
}

// command is the app's command for a container: the interpreter by its name (found on the
// image's PATH), and the script as it is, said in a note when it is a path of this machine.
func (a *app) command() []string {
	s := a.spec
	argv := s.Command()
	if s.Interpreter != "" {
		argv[0] = filepath.Base(s.Interpreter)
	}
	if !s.ScriptIsCommand && filepath.IsAbs(s.Script) {
		a.note(fmt.Sprintf("%s is a path on this machine: the image must hold the app there (or change the command)", s.Script))
	}
	return argv
}

func (a *app) note(n string) {
	if !slices.Contains(a.notes, n) {
		a.notes = append(a.notes, n)
	}
}

// image is the app's container image.
func (a *app) image(o Options) string {
	if o.Image != "" {
		return o.Image
	}
	a.note(fmt.Sprintf("image %s:latest is a name for your app's image: build it (with the app and its runtime), or pass --image", a.name))
	return a.name + ":latest"
}

// comments renders notes as comment lines, with prefix (# or //).
func comments(prefix string, notes []string) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(prefix + " " + n + "\n")
	}
	return b.String()
}
