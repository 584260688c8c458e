package daemon

import (
	"maps"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/supervisor"
)

// toProcess renders an instance in PM2's jlist shape.
func toProcess(i *supervisor.Info, u metrics.Usage, instances int, version string) api.Process {
	s := i.Spec
	epoch := func(t interface{ UnixMilli() int64 }) int64 { return t.UnixMilli() }
	p := api.Process{
		Pid:   i.Pid,
		Name:  i.Name,
		PmID:  i.ID,
		Monit: api.Monit{},
		Pm2Env: api.Env{
			Name:             i.Name,
			Namespace:        s.Namespace,
			Status:           string(i.Status),
			PmID:             i.ID,
			RestartTime:      i.History.Restarts,
			UnstableRestarts: i.History.Unstable,
			CreatedAt:        epoch(i.Created),
			ExecMode:         string(s.ExecMode),
			Instances:        instances,
			InstanceVar:      s.InstanceVar,
			IncrementVar:     s.IncrementVar,
			ConfigFile:       s.CreatedFromFile,
			NodeAppInstance:  i.Index,
			PmOutLogPath:     i.OutLog,
			PmErrLogPath:     i.ErrLog,
			PmLogPath:        i.LogFile,
			PmPidPath:        i.PidFile,
			PmExecPath:       s.Script,
			PmCwd:            s.Cwd,
			ExecInterpreter:  s.InterpreterLabel,
			NodeArgs:         nodeArgs(s),
			Args:             nonNil(s.Args),
			Autorestart:      s.Autorestart,
			Autostart:        s.Autostart,
			MaxRestarts:      s.MaxRestarts,
			MinUptime:        s.MinUptime.Milliseconds(),
			RestartDelay:     s.RestartDelay.Milliseconds(),
			ExpBackoff:       s.ExpBackoffDelay.Milliseconds(),
			KillTimeout:      s.KillTimeout.Milliseconds(),
			KillSignal:       s.KillSignal,
			WaitReady:        s.WaitReady,
			ListenTimeout:    s.ListenTimeout.Milliseconds(),
			DrainTimeout:     s.Drain().Milliseconds(),
			Proxy:            s.Proxy,
			Listening:        i.Listening,
			Treekill:         s.Treekill,
			MergeLogs:        !s.SeparateLogs(),
			LogDateFormat:    s.LogDateFormat,
			ExitCode:         i.ExitCode,
			Version:          "N/A",
			TendVersion:      version,
			Username:         username(),
			Vizion:           !s.NoVizion,
			Watch:            i.Watching(),
			AxmActions:       []any{},
			AxmMonitor:       axmMonitor(i.Custom),
			AxmOptions:       map[string]any{},
			Env:              instanceEnv(s, i.ID, i.Index),
			EnvTyped:         s.EnvTyped,
		},
	}
	if !i.Started.IsZero() {
		p.Pm2Env.PmUptime = epoch(i.Started)
	}
	if i.Pid > 0 {
		p.Monit = api.Monit{Memory: u.Memory, CPU: u.CPU}
		p.Pm2Env.Procs = u.Procs
	}
	p.Pm2Env.MaxMemoryRestart = s.MaxMemoryRestart
	if s.CronRestart != "" {
		p.Pm2Env.CronRestart = s.CronRestart
		if sched, err := config.CronSchedule(s.CronRestart, nil); err == nil {
			p.Pm2Env.CronNext = sched.Next(time.Now()).UnixMilli()
		}
	}
	p.Pm2Env.MemoryRestarts = i.History.MemoryRestarts
	for _, x := range i.History.Exits {
		e := api.Exit{At: x.At.UnixMilli(), Signal: x.Signal, UptimeMs: x.Uptime.Milliseconds(), Why: x.Why}
		if x.Signal == "" && x.Why == "exit" {
			e.Code = &x.Code
		}
		p.Pm2Env.Exits = append(p.Pm2Env.Exits, e)
	}
	if !i.RetryAt.IsZero() {
		p.Pm2Env.RetryAt = i.RetryAt.UnixMilli()
	}
	if h := i.Logs; h != nil {
		if out, errs := h.Dropped[0].Load(), h.Dropped[1].Load(); out+errs > 0 {
			p.Pm2Env.LogDropped = &api.LogDropped{Out: out, Err: errs, Reason: h.Reason()}
		}
	}
	if p.Pm2Env.Env == nil {
		p.Pm2Env.Env = map[string]string{}
	}
	for _, l := range s.Ports {
		p.Pm2Env.Ports = append(p.Pm2Env.Ports, l.String())
	}
	return p
}

// instanceEnv is the environment the instance's process got from its app, as PM2 shows it: the
// app's, with the per-instance variables (tend's private ones, fds and sockets, left out).
func instanceEnv(s *config.AppSpec, id, index int) map[string]string {
	env := maps.Clone(s.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, s.InstanceEnv(id, index))
	return env
}

// username is the daemon's user, as PM2 shows it.
var username = sync.OnceValue(func() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
})

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nodeArgs is node_args as PM2 shows it: a list, empty when none were given, and absent (nil)
// once the user dropped them with null.
func nodeArgs(s *config.AppSpec) []string {
	if s.NodeArgsDropped {
		return nil
	}
	return nonNil(s.InterpreterArgs)
}

// axmMonitor is the instance's custom metrics as PM2's jlist shows @pm2/io's: name → {value,
// unit}.
func axmMonitor(c *supervisor.CustomMetrics) map[string]any {
	vals, _ := c.Snapshot()
	type entry struct { // value first, as @pm2/io sends it and PM2 prints it
		Value any    `json:"value"`
		Unit  string `json:"unit,omitempty"`
	}
	out := make(map[string]any, len(vals))
	for name, m := range vals {
		out[name] = entry{m.Value, m.Unit}
	}
	return out
}
