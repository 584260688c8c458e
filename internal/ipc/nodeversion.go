package ipc

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Node majors whose internal cluster protocol tend was checked against (research §2.4).
const (
	nodeMinKnown = 18
	nodeMaxKnown = 26
)

// Nodes remembers, per Node binary, whether tend knows its internal cluster protocol. The zero
// value is ready to use.
type Nodes struct {
	mu    sync.Mutex
	known map[string]bool
}

// Known reports whether the Node at path speaks a cluster protocol tend knows; its workers
// otherwise get their sockets through tend's preload. A version that cannot be read counts as
// known, and is asked again next time rather than remembered.
func (n *Nodes) Known(path string, log *slog.Logger) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v, ok := n.known[path]; ok {
		return v
	}
	major, version := nodeMajor(path)
	if major == 0 {
		log.Warn("could not read this Node's version; using its cluster protocol", "node", path, "version", version)
		return true
	}
	known := major >= nodeMinKnown && major <= nodeMaxKnown
	if !known {
		log.Warn("this Node's internal cluster protocol is not one tend knows; its cluster apps get their sockets through tend's preload instead",
			"node", path, "version", version, "known", fmt.Sprintf("%d to %d", nodeMinKnown, nodeMaxKnown))
	}
	if n.known == nil {
		n.known = map[string]bool{}
	}
	n.known[path] = known
	return known
}

func nodeMajor(node string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The daemon reaps every child itself (wait4(-1)), so Output may report ECHILD for a
	// process that ran fine: what it printed decides.
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, perr := strconv.Atoi(major)
	if perr != nil {
		if err != nil {
			return 0, "unknown (" + err.Error() + ")"
		}
		return 0, "unknown (" + v + ")"
	}
	return n, v
}
