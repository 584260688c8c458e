package ipc

import (
	"encoding/json"
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"
)

// Worker is what the protocol needs from whoever owns one worker process's channel.
type Worker interface {
	// Socket gives a dup of the listening socket for host:port (the caller closes it); n tells
	// apart several listen(0) calls of one worker. data is the server data the worker sent,
	// echo what it must get back (an https server's ticket keys are shared that way).
	Socket(host string, port, n int, data json.RawMessage) (fd, actual int, echo json.RawMessage, err error)
	// Listening says the worker serves: it listens on the socket it was given.
	Listening()
	// ListenFailed says the worker asked for a port it could not get (Socket failed). It comes
	// after the worker's reply, so that the worker hears its errno before anything stops it.
	ListenFailed(err error)
	// Ready says the app sent 'ready' (process.send('ready')).
	Ready()
	// Drainable says the app drains when asked (it sent "drainable"): on a reload it gets
	// DrainCmd and closes its channel once its requests are done, before the kill signal.
	Drainable()
	// Other is any other message the app sent: not the protocol's.
	Other(raw json.RawMessage)
}

// Dispatch handles one message a worker sent on ch: Node's cluster protocol (queryServer,
// listening, exitedAfterDisconnect) and the preload's equivalents are answered here, whole;
// 'ready' and anything else go to w. It is called on the channel's reader goroutine and never
// waits there for long: socket answers wait for the worker's ACK, which comes through that same
// reader, so they run on goroutines of their own.
func Dispatch(ch *Channel, m Message, w Worker, log *slog.Logger) {
	switch m.Cmd {
	case "NODE_CLUSTER":
		cm, err := ParseCluster(m.Raw)
		if err != nil {
			log.Warn("cluster protocol", "err", err)
			return
		}
		switch cm.Act {
		case "queryServer":
			go answerQuery(ch, cm, w, log)
		case "listening":
			w.Listening()
		case "exitedAfterDisconnect":
			if cm.Seq != nil {
				_ = ch.Ack(*cm.Seq)
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
			go answerShim(ch, q.Seq, q.Address, q.Port, q.Index, w, log)
		}
	case "NODE_TEND_LISTENING":
		w.Listening()
	case "":
		if m.IsString("ready") {
			w.Ready()
			return
		}
		if m.IsString("drainable") {
			w.Drainable()
			return
		}
		w.Other(m.Raw)
	}
}

// answerQuery answers a Node worker's queryServer with its slot's socket (Node's SHARED
// scheduling: the worker accepts on it itself) or with an errno its listen() reports.
func answerQuery(ch *Channel, m ClusterMsg, w Worker, log *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic answering queryServer", "panic", p)
		}
	}()
	if m.Seq == nil {
		return
	}
	port := 0
	if m.Port != nil {
		port = *m.Port
	}
	key := KeyOf(m.Host(), port, m.Index)
	if !m.TCP() {
		log.Warn("cluster mode shares TCP ports only; this listen (a unix path, UDP or an fd) is refused", "address", m.Host(), "addressType", string(m.AddressType))
		_ = ch.Send(ch.QueryReply(*m.Seq, key, m.Data, UVENOTSUP))
		return
	}
	fd, _, data, err := w.Socket(m.Host(), port, m.Index, m.Data)
	if err != nil {
		// The worker sets its server data from the reply even on an error (an https server
		// reads ticketKeys from it), so it is echoed as Node's primary does.
		_ = ch.Send(ch.QueryReply(*m.Seq, key, m.Data, errnoOf(err)))
		w.ListenFailed(err)
		return
	}
	defer unix.Close(fd)
	if err := ch.SendHandle("net.Native", ch.QueryReply(*m.Seq, key, data, 0), fd); err != nil {
		log.Warn("could not hand the listening socket over", "port", port, "err", err)
	}
}

// answerShim answers the preload's listen request (Node versions tend does not know).
func answerShim(ch *Channel, seq int64, address *string, port, index int, w Worker, log *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic answering a listen request", "panic", p)
		}
	}()
	host := ""
	if address != nil {
		host = *address
	}
	fd, actual, _, err := w.Socket(host, port, index, nil)
	if err != nil {
		code := "EADDRINUSE"
		if !errors.Is(err, unix.EADDRINUSE) {
			code = "EINVAL"
		}
		_ = ch.Send(map[string]any{"cmd": "NODE_TEND_LISTEN_REPLY", "ack": seq, "errno": errnoOf(err), "code": code, "message": err.Error()})
		w.ListenFailed(err)
		return
	}
	defer unix.Close(fd)
	reply := map[string]any{"cmd": "NODE_TEND_LISTEN_REPLY", "ack": seq, "errno": 0, "port": actual}
	if err := ch.SendHandle("net.Native", reply, fd); err != nil {
		log.Warn("could not hand the listening socket over", "port", port, "err", err)
	}
}

// errnoOf is the libuv errno a listen() in the worker reports for err.
func errnoOf(err error) int {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return UVEADDRINUSE
	case errors.Is(err, unix.EACCES):
		return UVEACCES
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return UVEADDRNOTAVA
	}
	return UVEINVAL
}
