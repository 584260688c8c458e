package wire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// A request as any client may send it: readRequest never panics, and what it takes has a method
// and a path that begins with '/'.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET /v1/processes HTTP/1.1\r\nHost: tend\r\n\r\n",
		"POST /v1/apps HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"GET /?token=a%20b HTTP/1.0\r\n\r\n", "GET http://x/ HTTP/1.1\r\n\r\n", "\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := readRequest(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (r.Method == "" || !strings.HasPrefix(r.Path, "/")) {
			t.Errorf("took %q as method %q path %q", b, r.Method, r.Path)
		}
	})
}

// An answer as a daemon (or anything on the socket) may send it: ReadResponse never panics.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 500\r\n\r\n", "garbage"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(b))); err == nil && resp.Body != nil {
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
		}
	})
}
