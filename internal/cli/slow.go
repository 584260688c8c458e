package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
)

// slowAfter is how long a command that changes what runs goes on before it says what it waits for.
var slowAfter = 2 * time.Second

// patient is a client whose calls that wait for processes (start, restart, reload, stop, scale)
// say, once they take long, what they wait for instead of being silent.
type patient struct {
	client.API
	w io.Writer
}

func (p patient) wait(what string, f func() error) error {
	t := time.AfterFunc(slowAfter, func() {
		fmt.Fprintf(p.w, "tend: waiting for %s\n", what)
	})
	defer t.Stop()
	return f()
}

func (p patient) Start(req api.StartRequest) error {
	var ns []string
	for _, a := range req.Apps {
		ns = append(ns, a.Name)
	}
	what := fmt.Sprintf("%s to be online (each instance: its start, and wait_ready or listen_timeout when set)", names(ns))
	if req.Mode == "reload" {
		what = fmt.Sprintf("%s to reload (a new process online, then the old one done with its requests, one instance at a time)", names(ns))
	}
	return p.wait(what, func() error { return p.API.Start(req) })
}

func (p patient) Action(verb, target string) error {
	what := map[string]string{
		"start":   "%s to be online",
		"restart": "%s to stop and to be online again",
		"reload":  "%s to reload (a new process online, then the old one done with its requests, one instance at a time)",
		"stop":    "%s to stop (kill_timeout, then SIGKILL)",
		"delete":  "%s to stop (kill_timeout, then SIGKILL)",
	}[verb]
	if what == "" {
		return p.API.Action(verb, target)
	}
	return p.wait(fmt.Sprintf(what, target), func() error { return p.API.Action(verb, target) })
}

func (p patient) Scale(name string, n int) error {
	return p.wait(fmt.Sprintf("%s to have %d instances (new ones online, removed ones done with their requests)", name, n),
		func() error { return p.API.Scale(name, n) })
}

// names lists apps for a one-line message: a thousand names would be a thousand-name line.
func names(ns []string) string {
	const most = 5
	if len(ns) <= most {
		return strings.Join(ns, ", ")
	}
	return fmt.Sprintf("%d apps (%s…)", len(ns), strings.Join(ns[:most], ", "))
}
