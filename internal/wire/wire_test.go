package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs a Server with a mux like the daemon's on a unix socket in a temp dir.
func serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w ResponseWriter, r *Request) {
		w.Header().Set("X-Tend-Version", "9")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"pong":true}`)
	})
	mux.HandleFunc("POST /v1/act/{verb}", func(w ResponseWriter, r *Request) {
		b, err := io.ReadAll(MaxBytesReader(r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(StatusRequestTooLarge)
			_, _ = io.WriteString(w, err.Error())
			return
		}
		_, _ = io.WriteString(w, r.PathValue("verb")+":"+string(b))
	})
	mux.HandleFunc("GET /v1/stream", func(w ResponseWriter, r *Request) {
		_, _ = io.WriteString(w, "one\n")
		w.(Flusher).Flush()
		_, _ = io.WriteString(w, "two\n")
	})
	srv := &Server{Handler: mux, ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, MaxHeaderBytes: 4096}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return sock
}

func roundTrip(t *testing.T, sock, method, path string, body []byte) (*Response, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := WriteRequest(c, method, path, body); err != nil {
		t.Fatal(err)
	}
	r, err := ReadResponse(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, string(b)
}

func TestRoundTrips(t *testing.T) {
	sock := serve(t)
	r, body := roundTrip(t, sock, "GET", "/v1/ping?x=1", nil)
	if r.Status != 200 || body != `{"pong":true}` || r.Header.Get("x-tend-version") != "9" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %v", r.Status, body, r.Header)
	}
	if r, body = roundTrip(t, sock, "POST", "/v1/act/stop", []byte(`{"t":"all"}`)); r.Status != 200 || body != `stop:{"t":"all"}` {
		t.Fatalf("%d %q", r.Status, body)
	}
	if r, _ = roundTrip(t, sock, "GET", "/v1/nope", nil); r.Status != StatusNotFound {
		t.Fatalf("unknown path: %d", r.Status)
	}
	if r, _ = roundTrip(t, sock, "DELETE", "/v1/ping", nil); r.Status != StatusMethodNotAllowed {
		t.Fatalf("wrong method: %d", r.Status)
	}
	if r, _ = roundTrip(t, sock, "POST", "/v1/act/a/b", nil); r.Status != StatusNotFound {
		t.Fatalf("two segments for one wildcard: %d", r.Status)
	}
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	if r, body = roundTrip(t, sock, "POST", "/v1/act/x", big); r.Status != StatusRequestTooLarge || !strings.Contains(body, "too large") {
		t.Fatalf("body over the limit: %d %q", r.Status, body)
	}
	if r, body = roundTrip(t, sock, "POST", "/v1/act/x", big[:1<<20]); r.Status != 200 || len(body) != 2+1<<20 {
		t.Fatalf("body at the limit: %d, %d bytes", r.Status, len(body))
	}
	if r, body = roundTrip(t, sock, "GET", "/v1/stream", nil); r.Status != 200 || body != "one\ntwo\n" || r.Header.Get("Content-Length") != "" {
		t.Fatalf("streamed: %d %q %v", r.Status, body, r.Header)
	}
}

// net/http's client (in the test only) must read the server's answers, and the server must read
// its requests: the wire is plain HTTP/1.1, as curl sees it too.
func TestNetHTTPClientInterop(t *testing.T) {
	sock := serve(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://tend/v1/act/go", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `go:{"a":1}` {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	resp, err = hc.Get("http://tend/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "one\ntwo\n" {
		t.Fatalf("%q", b)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--unix-socket", sock, "-d", strings.Repeat("y", 3000), "http://tend/v1/act/curl").Output()
		if err != nil || !strings.HasPrefix(string(out), "curl:yyy") || len(out) != 5+3000 {
			t.Fatalf("curl: %v %q", err, out[:min(len(out), 40)])
		}
	}
}

// The client reads answers of net/http servers too (an older daemon): chunked bodies.
func TestClientReadsChunked(t *testing.T) {
	in := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
	r, err := ReadResponse(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil || string(b) != "hello world" {
		t.Fatalf("%q %v", b, err)
	}
	for _, bad := range []string{"SMTP 220\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"} {
		if _, err := ReadResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	r, _ = ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")))
	if _, err := io.ReadAll(r.Body); err != io.ErrUnexpectedEOF {
		t.Fatalf("a short body: %v", err)
	}
}

// Hostile requests get a plain answer or a closed connection, never a hung goroutine.
func TestBadRequests(t *testing.T) {
	sock := serve(t)
	send := func(raw string) string {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, raw)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	cases := map[string]string{
		"garbage\r\n\r\n": "400",
		"GET /v1/ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n":           "411",
		"POST /v1/act/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n":               "400",
		"GET /v1/ping HTTP/1.1\r\nX: " + strings.Repeat("a", 8000) + "\r\n\r\n": "431",
		"GET /v1/ping HTTP/1.1\r\n":                                             "", // then silence: the header timeout closes it
	}
	for raw, want := range cases {
		got := send(raw)
		if want == "" && got != "" || want != "" && !strings.HasPrefix(got, "HTTP/1.1 "+want) {
			t.Errorf("%.30q: got %.60q, want %s", raw, got, want)
		}
	}
	var v map[string]any
	_, body := roundTrip(t, sock, "GET", "/v1/ping", nil)
	if json.Unmarshal([]byte(body), &v) != nil {
		t.Fatal("the server is broken after bad requests")
	}
}
