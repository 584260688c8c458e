package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
)

// onMessage handles one message from a run's IPC channel, on that channel's reader goroutine:
// the protocol is ipc's; what it says of the worker comes back through worker's methods.
func (in *Instance) onMessage(r *run, m ipc.Message) {
	ipc.Dispatch(r.channel, m, worker{in: in, r: r}, r.log)
}

// worker is one run as the IPC protocol sees it.
type worker struct {
	in *Instance
	r  *run
}

// Socket gives the run a dup of its slot's socket for host:port (n tells apart several
// listen(0) calls); the run's holder keeps a copy of every socket it was given.
func (w worker) Socket(host string, port, n int, data json.RawMessage) (int, int, json.RawMessage, error) {
	k := sockets.Key{Host: host, Port: port}
	if port == 0 {
		k.N = n
	}
	fd, actual, echo, err := w.in.app.socks.Dup(k, w.in.index, data)
	if err != nil {
		w.r.listenErr.Store(&err)
		return fd, actual, echo, err
	}
	w.r.p.Holder().Keep(fmt.Sprintf("socket:%s:%d:%d", host, actual, n), proc.KindSocket, fd)
	return fd, actual, echo, nil
}

func (w worker) Listening()                { w.in.post(event{r: w.r, kind: evListening}) }
func (w worker) Ready()                    { w.in.post(event{r: w.r, kind: evReady}) }
func (w worker) Drainable()                { w.r.drainable.Store(true) }
func (w worker) ListenFailed(e error)      { w.in.post(event{r: w.r, kind: evListenFailed, err: e}) }
func (w worker) Other(raw json.RawMessage) { w.in.sup.route(w.in, w.r.log, raw) }

// needsShim reports whether a Node app must get its sockets through tend's preload instead of
// Node's own cluster protocol: its Node is one tend does not know, or the app's env asks for it.
func (s *Supervisor) needsShim(spec *config.AppSpec) bool {
	if spec.Env["TEND_NODE_SHIM"] == "1" {
		return true
	}
	if spec.InterpreterLabel != "node" {
		return false // Deno speaks the protocol; Bun binds its ports itself
	}
	return !s.nodes.Known(spec.Interpreter, s.log)
}

// route delivers PM2-style messages between instances: {type: 'process:msg', data, id} goes to
// the instance with that pm_id, {…, name} to every instance of that app, and without either to
// the sender's fellow instances. Anything else an app sends is not for tend.
func (s *Supervisor) route(from *Instance, log *slog.Logger, raw json.RawMessage) {
	if len(raw) == 0 || raw[0] != '{' {
		return
	}
	var head struct {
		Type string          `json:"type"`
		Cmd  string          `json:"cmd"`
		ID   json.RawMessage `json:"id"`
		Name string          `json:"name"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return
	}
	if from.customMetric(head.Type, raw, log) || head.Type != "process:msg" || reserved(head.Cmd) {
		return
	}
	var targets []*Instance
	switch {
	case len(head.ID) > 0 && string(head.ID) != "null":
		id := strings.Trim(string(head.ID), `"`)
		ins, err := s.Select(id)
		if err != nil || !config.IsID(id) {
			log.Warn("process:msg to an unknown id", "id", id)
			return
		}
		targets = ins
	case head.Name != "":
		ins, err := s.Select(head.Name)
		if err != nil {
			log.Warn("process:msg to an unknown app", "to", head.Name)
			return
		}
		targets = ins
	default:
		ins, _ := s.Select(from.Info().Name)
		for _, in := range ins {
			if in != from {
				targets = append(targets, in)
			}
		}
	}
	// The receiver learns who sent it, unless the sender said so itself: a member added before
	// the object's closing brace (it has one at least, its type), written after the message
	// rather than appended to a copy of it.
	parts := [][]byte{raw}
	if !bytes.Contains(raw, []byte(`"from"`)) {
		body := bytes.TrimSuffix(bytes.TrimSpace(raw), []byte("}"))
		parts = [][]byte{body, []byte(`,"from":` + strconv.Itoa(from.id) + `}`)}
	}
	// Sent from the sender's own reader, in order; a receiver that does not read holds up only
	// its sender, for at most the channel's write timeout per MiB it fails to take.
	for _, in := range targets {
		if ch := in.Info().channel; ch != nil {
			_ = ch.SendRaw(parts...)
		}
	}
}

// reserved reports whether a message's cmd belongs to the protocol (Node's NODE_* commands):
// such a message from a user could tell an instance to disconnect.
func reserved(cmd string) bool { return strings.HasPrefix(cmd, "NODE_") }

// Message sends a JSON value to process.on('message') in every selected instance. It reports
// the instances that could not get it (stopped, or no IPC channel).
func (s *Supervisor) Message(target string, raw json.RawMessage) ([]*Instance, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%w: the message is not valid JSON", config.ErrInvalid)
	}
	var head struct {
		Cmd string `json:"cmd"`
	}
	if json.Unmarshal(raw, &head) == nil && reserved(head.Cmd) {
		return nil, fmt.Errorf("%w: a message whose cmd starts with NODE_ is reserved for Node's own protocol; use another cmd", config.ErrInvalid)
	}
	ins, err := s.Select(target)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, in := range ins {
		i := in.Info()
		switch {
		case i.Pid == 0:
			errs = append(errs, fmt.Errorf("%w: app %q (id %d) is not running", ErrNotRunning, i.Name, i.ID))
		case i.channel == nil:
			errs = append(errs, fmt.Errorf("app %q (id %d) has no IPC channel (Node, Bun, Deno, and cluster apps with --port have one)", i.Name, i.ID))
		default:
			if err := i.channel.Send(raw); err != nil {
				errs = append(errs, fmt.Errorf("app %q (id %d): %w", i.Name, i.ID, err))
			}
		}
	}
	return ins, joinDistinct(errs)
}
