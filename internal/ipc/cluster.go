package ipc

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// ClusterMsg is a message of Node's internal cluster protocol (lib/internal/cluster/child.js),
// as a worker sends it: {"cmd":"NODE_CLUSTER","act":...,"seq":n,...} (research §2.1).
type ClusterMsg struct {
	Act         string          `json:"act"`
	Seq         *int64          `json:"seq"`
	Address     *string         `json:"address"`
	Port        *int            `json:"port"`
	AddressType json.RawMessage `json:"addressType"` // 4, 6, -1 (a unix path), "udp4", "udp6"
	Fd          *int            `json:"fd"`
	Index       int             `json:"index"`
	Data        json.RawMessage `json:"data"`
	Key         json.RawMessage `json:"key"`
}

// ParseCluster decodes a NODE_CLUSTER message.
func ParseCluster(raw json.RawMessage) (ClusterMsg, error) {
	var m ClusterMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("bad NODE_CLUSTER message: %w", err)
	}
	return m, nil
}

// TCP reports whether a queryServer asks for a TCP port (not a unix path or UDP).
func (m ClusterMsg) TCP() bool {
	t := string(m.AddressType)
	return (t == "4" || t == "6" || t == "" || t == "null") && m.Port != nil && m.Fd == nil
}

// Host is the address asked for ("" for all addresses, as listen(port) without a host).
func (m ClusterMsg) Host() string {
	if m.Address == nil {
		return ""
	}
	return *m.Address
}

// Libuv error numbers a queryServer reply carries (negative errno, as Node's primary sends).
const (
	UVEADDRINUSE  = -98
	UVEACCES      = -13
	UVEINVAL      = -22
	UVENOTSUP     = -95
	UVEADDRNOTAVA = -99
)

// QueryReply is the primary's answer to a queryServer: with errno 0 it travels inside a
// NODE_HANDLE of type net.Native carrying the listening socket (Node's SHARED scheduling).
func (c *Channel) QueryReply(ack int64, key string, data json.RawMessage, errno int) map[string]any {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return map[string]any{"cmd": "NODE_CLUSTER", "errno": errno, "key": key, "ack": ack, "data": data, "seq": c.NextSeq()}
}

// Ack answers a worker message that waits for one (exitedAfterDisconnect).
func (c *Channel) Ack(ack int64) error {
	return c.Send(map[string]any{"cmd": "NODE_CLUSTER", "ack": ack, "seq": c.NextSeq()})
}

// Disconnect asks a cluster worker to close its servers (waiting for their connections) and
// then its IPC channel: what Node's worker.disconnect() sends.
func (c *Channel) Disconnect() error {
	return c.Send(map[string]any{"cmd": "NODE_CLUSTER", "act": "disconnect", "seq": c.NextSeq()})
}

// Retire tells a cluster worker being replaced to finish: Drain, then Node's disconnect, or the
// preload's own (NODE_TEND_DISCONNECT) for a Node the shim serves.
func (c *Channel) Retire(shim bool) {
	_ = c.Drain()
	if shim {
		_ = c.Send(map[string]string{"cmd": "NODE_TEND_DISCONNECT"})
	} else {
		_ = c.Disconnect()
	}
}

// DrainCmd is the private command of tend's Node preload: respond with Connection: close and
// close idle keep-alive connections, so that a draining server finishes (research §6.3).
const DrainCmd = "NODE_TEND_DRAIN"

// Drain sends DrainCmd; it is an internal message, never seen by the app's 'message' handlers.
func (c *Channel) Drain() error { return c.Send(map[string]string{"cmd": DrainCmd}) }

// KeyOf is how tend names one listening address of a worker in the protocol's key field.
func KeyOf(host string, port, index int) string {
	return host + ":" + strconv.Itoa(port) + ":" + strconv.Itoa(index)
}
