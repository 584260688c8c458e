package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/sockets"
)

// onMessage handles one message from a run's IPC channel, on that channel's reader goroutine.
// Nothing here may wait for the instance's goroutine for long: it posts events and answers
// socket requests from goroutines of their own (an answer waits for the app's ACK, which comes
// through this same reader).
func (in *Instance) onMessage(r *run, m ipc.Message) {
	switch m.Cmd {
	case "NODE_CLUSTER":
		cm, err := ipc.ParseCluster(m.Raw)
		if err != nil {
			r.log.Warn("cluster protocol", "err", err)
			return
		}
		switch cm.Act {
		case "queryServer":
			go in.answerQuery(r, cm)
		case "listening":
			in.post(event{r: r, kind: evListening})
		case "exitedAfterDisconnect":
			if cm.Seq != nil {
				_ = r.channel.Ack(*cm.Seq)
			}
		}
	case "NODE_TEND_LISTEN":
		var q struct {
			Seq     int64   `json:"seq"`
			Port    int     `json:"port"`
			Address *string `json:"address"`
			Index   int     `json:"index"`
		}
		if json.Unmarshal(m.Raw, &q) == nil {
			go in.answerShim(r, q.Seq, q.Address, q.Port, q.Index)
		}
	case "NODE_TEND_LISTENING":
		in.post(event{r: r, kind: evListening})
	case "":
		if m.IsString("ready") {
			in.post(event{r: r, kind: evReady})
			return
		}
		in.sup.route(in, r.log, m.Raw)
	}
}

// slotSocket gives the run a dup of its slot's socket for host:port; n tells apart several
// listen(0) calls.
func (in *Instance) slotSocket(host string, port, n int, data json.RawMessage) (fd, actual int, echo json.RawMessage, err error) {
	k := sockets.Key{Host: host, Port: port}
	if port == 0 {
		k.N = n
	}
	return in.app.socks.Dup(k, in.index, data)
}

// answerQuery answers a Node worker's queryServer with its slot's socket (Node's SHARED
// scheduling: the worker accepts on it itself) or with an errno its listen() reports.
func (in *Instance) answerQuery(r *run, m ipc.ClusterMsg) {
	if m.Seq == nil {
		return
	}
	ch := r.channel
	port := 0
	if m.Port != nil {
		port = *m.Port
	}
	key := ipc.KeyOf(m.Host(), port, m.Index)
	if !m.TCP() {
		r.log.Warn("cluster mode shares TCP ports only; this listen (a unix path, UDP or an fd) is refused", "address", m.Host(), "addressType", string(m.AddressType))
		_ = ch.Send(ch.QueryReply(*m.Seq, key, m.Data, ipc.UVENOTSUP))
		return
	}
	fd, _, data, err := in.slotSocket(m.Host(), port, m.Index, m.Data)
	if err != nil {
		// The worker sets its server data from the reply even on an error (an https server
		// reads ticketKeys from it), so it is echoed as Node's primary does.
		_ = ch.Send(ch.QueryReply(*m.Seq, key, m.Data, errnoOf(err)))
		in.post(event{r: r, kind: evListenFailed, err: err})
		return
	}
	defer unix.Close(fd)
	if err := ch.SendHandle("net.Native", ch.QueryReply(*m.Seq, key, data, 0), fd); err != nil {
		r.log.Warn("could not hand the listening socket over", "port", port, "err", err)
	}
}

// answerShim answers the preload's listen request (Node versions tend does not know).
func (in *Instance) answerShim(r *run, seq int64, address *string, port, index int) {
	ch := r.channel
	host := ""
	if address != nil {
		host = *address
	}
	fd, actual, _, err := in.slotSocket(host, port, index, nil)
	if err != nil {
		code := "EADDRINUSE"
		if !errors.Is(err, sockets.ErrInUse) {
			code = "EINVAL"
		}
		_ = ch.Send(map[string]any{"cmd": "NODE_TEND_LISTEN_REPLY", "ack": seq, "errno": errnoOf(err), "code": code, "message": err.Error()})
		in.post(event{r: r, kind: evListenFailed, err: err})
		return
	}
	defer unix.Close(fd)
	reply := map[string]any{"cmd": "NODE_TEND_LISTEN_REPLY", "ack": seq, "errno": 0, "port": actual}
	if err := ch.SendHandle("net.Native", reply, fd); err != nil {
		r.log.Warn("could not hand the listening socket over", "port", port, "err", err)
	}
}

func errnoOf(err error) int {
	if errors.Is(err, sockets.ErrInUse) || errors.Is(err, unix.EADDRINUSE) {
		return ipc.UVEADDRINUSE
	}
	if errors.Is(err, unix.EACCES) {
		return ipc.UVEACCES
	}
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return ipc.UVEADDRNOTAVA
	}
	return ipc.UVEINVAL
}

// Node majors whose internal cluster protocol tend was checked against (research §2.4).
const (
	nodeMinKnown = 18
	nodeMaxKnown = 26
)

// needsShim reports whether a Node app must get its sockets through tend's preload instead of
// Node's own cluster protocol: its Node is one tend does not know, or the app's env asks for it.
func (s *Supervisor) needsShim(spec *config.AppSpec) bool {
	if spec.Env["TEND_NODE_SHIM"] == "1" {
		return true
	}
	if spec.InterpreterLabel != "node" {
		return false // Deno speaks the protocol; Bun binds its ports itself
	}
	s.nodeMu.Lock()
	defer s.nodeMu.Unlock()
	if v, ok := s.nodeShim[spec.Interpreter]; ok {
		return v
	}
	major, version := nodeMajor(spec.Interpreter)
	if major == 0 {
		// Not known: try again next time rather than remember a guess.
		s.log.Warn("could not read this Node's version; using its cluster protocol", "node", spec.Interpreter, "version", version)
		return false
	}
	shim := major < nodeMinKnown || major > nodeMaxKnown
	if shim {
		s.log.Warn("this Node's internal cluster protocol is not one tend knows; its cluster apps get their sockets through tend's preload instead",
			"node", spec.Interpreter, "version", version, "known", fmt.Sprintf("%d to %d", nodeMinKnown, nodeMaxKnown))
	}
	s.nodeShim[spec.Interpreter] = shim
	return shim
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
	if json.Unmarshal(raw, &head) != nil || head.Type != "process:msg" || reserved(head.Cmd) {
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
	// The receiver learns who sent it, unless the sender said so itself.
	if !bytes.Contains(raw, []byte(`"from"`)) {
		raw = append(append(bytes.TrimSuffix(bytes.TrimSpace(raw), []byte("}")), []byte(`,"from":`+strconv.Itoa(from.id))...), '}')
		if !json.Valid(raw) {
			return
		}
	}
	// Sent from the sender's own reader, in order; a receiver that does not read holds up only
	// its sender, for at most the channel's write timeout.
	for _, in := range targets {
		if ch := in.Info().channel; ch != nil {
			_ = ch.Send(json.RawMessage(raw))
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

// running ties a pid to the instance and run it belongs to.
type running struct {
	in *Instance
	r  *run
}

// ServeNotify reads systemd-style readiness datagrams ("READY=1", one KEY=VALUE per line) until
// conn is closed. Only the main process of an instance counts (systemd's NotifyAccess=main):
// the sender is known from the kernel's credentials, not from what it says.
func (s *Supervisor) ServeNotify(conn *net.UnixConn) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in readiness socket", "panic", fmt.Sprint(p))
		}
	}()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pid := senderPid(oob[:oobn])
		if pid <= 0 {
			continue
		}
		v, ok := s.running.Load(pid)
		if !ok {
			continue
		}
		who := v.(*running)
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if strings.TrimSpace(line) == "READY=1" {
				who.in.post(event{r: who.r, kind: evReady})
			}
		}
	}
}

func senderPid(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}
