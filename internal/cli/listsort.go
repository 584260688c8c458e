package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/api"
)

// listFields are what --sort orders by, as PM2's ls names them.
var listFields = map[string]func(a, b api.Process) int{
	"name":      func(a, b api.Process) int { return cmp.Compare(a.Name, b.Name) },
	"namespace": func(a, b api.Process) int { return cmp.Compare(a.Pm2Env.Namespace, b.Pm2Env.Namespace) },
	"id":        func(a, b api.Process) int { return cmp.Compare(a.PmID, b.PmID) },
	"pid":       func(a, b api.Process) int { return cmp.Compare(a.Pid, b.Pid) },
	"cpu":       func(a, b api.Process) int { return cmp.Compare(a.Monit.CPU, b.Monit.CPU) },
	"memory":    func(a, b api.Process) int { return cmp.Compare(a.Monit.Memory, b.Monit.Memory) },
	"uptime":    func(a, b api.Process) int { return cmp.Compare(a.Pm2Env.PmUptime, b.Pm2Env.PmUptime) },
	"status":    func(a, b api.Process) int { return cmp.Compare(a.Pm2Env.Status, b.Pm2Env.Status) },
}

// sortKey reads --sort: a field and asc or desc. PM2 takes an unknown field as name; tend says it.
func sortKey(s string) (field string, desc bool, err error) {
	if s == "" {
		return "id", false, nil
	}
	field, order, _ := strings.Cut(strings.ToLower(s), ":")
	if listFields[field] == nil {
		return "", false, usagef("--sort %s: sort by name, id, pid, namespace, memory, cpu, status or uptime", s)
	}
	switch order {
	case "", "asc":
	case "desc":
		desc = true
	default:
		return "", false, usagef("--sort %s: the order is asc or desc", s)
	}
	return field, desc, nil
}

// sortProcs orders the list for ls (ties keep id order).
func sortProcs(procs []api.Process, s string) {
	field, desc, err := sortKey(s)
	if err != nil {
		return
	}
	less := listFields[field]
	slices.SortStableFunc(procs, func(a, b api.Process) int {
		if desc {
			return less(b, a)
		}
		return less(a, b)
	})
}

// miniList prints PM2's ls -m: a block of "key : value" lines per process.
func miniList(io *IOStreams, procs []api.Process, now time.Time) {
	for _, p := range procs {
		e := p.Pm2Env
		up := "0"
		if e.Status == "online" {
			up = uptime(e, now)
		}
		watch := "no"
		if e.Watch {
			watch = "yes"
		}
		fmt.Fprintf(io.Out, "+--- %s\nnamespace : %s\nversion : %s\npid : %d\npm2 id : %d\nstatus : %s\nmode : %s\n"+
			"restarted : %d\nuptime : %s\nmemory usage : %s\nerror log : %s\nwatching : %s\nPID file : %s\n\n",
			safeText(p.Name), safeText(e.Namespace), e.Version, p.Pid, p.PmID, e.Status, strings.TrimSuffix(e.ExecMode, "_mode"),
			e.RestartTime, up, humanBytes(p.Monit.Memory), e.PmErrLogPath, watch, e.PmPidPath)
	}
}
