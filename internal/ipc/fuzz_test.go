package ipc

import (
	"bytes"
	"encoding/json"
	"testing"

	"golang.org/x/sys/unix"
)

// Whatever a process writes on its IPC channel: the reader never panics, and every non-blank
// line reaches the handler once, in order (Bun's 0x02 prefix taken off), so no message is lost
// or made up.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"cmd":"NODE_CLUSTER","act":"queryServer","port":3000}` + "\n" + `"ready"` + "\n",
		"\x02{\"cmd\":\"x\"}\n", "not json\n\n  \n", `{"cmd":"NODE_HANDLE"}` + "\n", "no newline",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip(err)
		}
		ch, err := Open(fds[0], false)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		go func() {
			for b := data; len(b) > 0; {
				n, err := unix.Write(fds[1], b)
				if err != nil {
					break
				}
				b = b[n:]
			}
			unix.Close(fds[1])
		}()
		var got [][]byte
		ch.Serve(func(m Message) { got = append(got, m.Raw) })
		var want [][]byte
		lines := bytes.Split(data, []byte{'\n'})
		for _, l := range lines[:len(lines)-1] { // the part after the last newline is no message
			l = bytes.TrimPrefix(l, []byte{0x02})
			if len(bytes.TrimSpace(l)) > 0 && !isAck(l) {
				want = append(want, l)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages from %q, want %d", len(got), data, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("message %d: %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// isAck is a NODE_HANDLE_ACK or NACK, which the channel keeps for itself.
func isAck(line []byte) bool {
	var h struct {
		Cmd string `json:"cmd"`
	}
	return len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &h) == nil && (h.Cmd == "NODE_HANDLE_ACK" || h.Cmd == "NODE_HANDLE_NACK")
}

// A NODE_CLUSTER message: it decodes or not, and what decodes answers TCP and Host without
// panicking.
func FuzzParseCluster(f *testing.F) {
	f.Add([]byte(`{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":3000,"addressType":4,"fd":null,"index":0,"key":":3000:4:0"}`))
	f.Add([]byte(`{"port":-1,"addressType":"udp4","address":"::"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if m, err := ParseCluster(raw); err == nil {
			_ = m.TCP()
			_ = m.Host()
		}
	})
}
