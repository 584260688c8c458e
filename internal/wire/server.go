// Package wire is the HTTP/1.1 of tend's control socket, both ends: a server that answers one
// request per connection (Connection: close), and the client's side of one round trip. It is the
// small part of net/http that tend uses, and `curl --unix-socket` still talks to it. It exists
// because every package linked into the one tend binary runs its init on every CLI call, and
// net/http brings crypto/tls, http2 and compress: measured, that was most of the gap between
// `tend --version` and a Go hello world (docs/architecture.md, "CLI start-up").
package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The statuses tend answers with.
const (
	StatusOK                  = 200
	StatusBadRequest          = 400
	StatusNotFound            = 404
	StatusMethodNotAllowed    = 405
	StatusLengthRequired      = 411
	StatusRequestTooLarge     = 413
	StatusHeaderTooLarge      = 431
	StatusUnprocessableEntity = 422
	StatusInternalServerError = 500
	StatusServiceUnavailable  = 503
)

// StatusText is the reason phrase of a status.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case StatusOK:
		return "OK"
	case StatusBadRequest:
		return "Bad Request"
	case StatusNotFound:
		return "Not Found"
	case StatusMethodNotAllowed:
		return "Method Not Allowed"
	case StatusLengthRequired:
		return "Length Required"
	case StatusServiceUnavailable:
		return "Service Unavailable"
	case StatusRequestTooLarge:
		return "Request Entity Too Large"
	case StatusHeaderTooLarge:
		return "Request Header Fields Too Large"
	case StatusUnprocessableEntity:
		return "Unprocessable Entity"
	case StatusInternalServerError:
		return "Internal Server Error"
	}
	return "Status " + strconv.Itoa(code)
}

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Header holds one value per field, under its canonical name.
type Header map[string]string

// Set sets a field.
func (h Header) Set(k, v string) { h[textproto.CanonicalMIMEHeaderKey(k)] = v }

// Get returns a field, or "".
func (h Header) Get(k string) string { return h[textproto.CanonicalMIMEHeaderKey(k)] }

// Request is one request as a handler sees it.
type Request struct {
	Method string
	Path   string // the target without its query
	Query  string // the target's query, after '?' (undecoded)
	Header Header
	// RemoteAddr is the peer's address (host:port on TCP).
	RemoteAddr string
	Body       io.Reader // empty when the request has none
	vars       map[string]string
}

// PathValue returns the {name} segment the route matched.
func (r *Request) PathValue(name string) string { return r.vars[name] }

// ResponseWriter is how a handler answers.
type ResponseWriter interface {
	Header() Header
	Write([]byte) (int, error)
	WriteHeader(code int)
}

// Flusher is a ResponseWriter that can send what it holds now: the answer is then streamed,
// delimited by the end of the connection.
type Flusher interface{ Flush() }

// Handler answers requests.
type Handler interface {
	ServeHTTP(ResponseWriter, *Request)
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(ResponseWriter, *Request)

// ServeHTTP calls f.
func (f HandlerFunc) ServeHTTP(w ResponseWriter, r *Request) { f(w, r) }

// ServeMux routes "METHOD /path" patterns, and "METHOD /prefix/{name}" ones whose last segment
// is a wildcard. An unknown path is 404; a known path with another method is 405.
type ServeMux struct{ routes []route }

type route struct {
	method, path, name string
	h                  Handler
}

// NewServeMux returns an empty mux.
func NewServeMux() *ServeMux { return &ServeMux{} }

// HandleFunc adds a route.
func (m *ServeMux) HandleFunc(pattern string, f func(ResponseWriter, *Request)) {
	method, path, _ := strings.Cut(pattern, " ")
	rt := route{method: method, path: path, h: HandlerFunc(f)}
	if i := strings.IndexByte(path, '{'); i >= 0 {
		rt.path, rt.name = path[:i], strings.Trim(path[i:], "{}")
	}
	m.routes = append(m.routes, rt)
}

// ServeHTTP dispatches to the route that matches.
func (m *ServeMux) ServeHTTP(w ResponseWriter, r *Request) {
	known := false
	for _, rt := range m.routes {
		var vars map[string]string
		if rt.name == "" {
			if r.Path != rt.path {
				continue
			}
		} else {
			v, ok := strings.CutPrefix(r.Path, rt.path)
			if !ok || v == "" || strings.Contains(v, "/") {
				continue
			}
			vars = map[string]string{rt.name: v}
		}
		known = true
		if rt.method == r.Method {
			r.vars = vars
			rt.h.ServeHTTP(w, r)
			return
		}
	}
	if known {
		w.WriteHeader(StatusMethodNotAllowed)
		_, _ = io.WriteString(w, "method not allowed\n")
		return
	}
	w.WriteHeader(StatusNotFound)
	_, _ = io.WriteString(w, "404 page not found\n")
}

// MaxBytesReader returns r, failing a read past n bytes.
func MaxBytesReader(r io.Reader, n int64) io.Reader { return &maxReader{r: r, n: n, limit: n} }

type maxReader struct {
	r        io.Reader
	n, limit int64
}

func (m *maxReader) Read(p []byte) (int, error) {
	if m.n <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if k, _ := m.r.Read(one[:]); k == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("request body too large (over %d bytes)", m.limit)
	}
	if int64(len(p)) > m.n {
		p = p[:m.n]
	}
	n, err := m.r.Read(p)
	m.n -= int64(n)
	return n, err
}

// Server answers one request per connection, each on a goroutine of its own.
type Server struct {
	Handler Handler
	// ReadHeaderTimeout bounds the request line and header fields (0: no bound).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole request, body included (0: no bound beyond the header's).
	ReadTimeout time.Duration
	// MaxHeaderBytes bounds them in size (0: 64 KiB).
	MaxHeaderBytes int
	// Allow, if set, is asked about every connection before anything is read from it; a
	// connection it refuses is closed at once.
	Allow func(net.Conn) bool

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	active sync.WaitGroup
}

// Serve accepts connections on ln until Shutdown (then it returns ErrServerClosed) or an error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if s.Allow != nil && !s.Allow(c) {
			c.Close()
			continue
		}
		s.active.Add(1)
		go func() {
			defer s.active.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

// Shutdown stops accepting and waits for the requests under way, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limited lets the header phase read at most n bytes, then the body read freely.
type limited struct {
	r io.Reader
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= k
	return k, err
}

var errHeaderTooLarge = errors.New("request header too large")

func (s *Server) serve(c net.Conn) {
	if t := s.ReadHeaderTimeout; t > 0 || s.ReadTimeout > 0 {
		if t <= 0 || s.ReadTimeout > 0 && s.ReadTimeout < t {
			t = s.ReadTimeout
		}
		_ = c.SetReadDeadline(time.Now().Add(t))
	}
	max := s.MaxHeaderBytes
	if max <= 0 {
		max = 64 << 10
	}
	lim := &limited{r: c, n: max}
	br := bufio.NewReaderSize(lim, 4096)
	w := &response{c: c, h: Header{}, status: StatusOK}
	r, status, err := readRequest(br)
	if err != nil {
		if errors.Is(err, errHeaderTooLarge) {
			status = StatusHeaderTooLarge
		}
		if status != 0 {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, err.Error()+"\n")
			w.finish()
		}
		return
	}
	var deadline time.Time
	if s.ReadTimeout > 0 {
		deadline = time.Now().Add(s.ReadTimeout)
	}
	_ = c.SetReadDeadline(deadline)
	lim.n = int(^uint(0) >> 1) // the header is read: the body is bounded by its handler
	r.RemoteAddr = c.RemoteAddr().String()
	if r.Header.Get("Expect") == "100-continue" {
		_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	if n, _ := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); n > 0 {
		r.Body = io.LimitReader(br, n)
	}
	s.Handler.ServeHTTP(w, r)
	w.finish()
}

// readRequest reads the request line and header fields. On an error, status says what to
// answer (0: nothing, the client is gone).
func readRequest(br *bufio.Reader) (*Request, int, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, 0, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || !strings.HasPrefix(target, "/") || !strings.HasPrefix(proto, "HTTP/1.") {
		return nil, StatusBadRequest, fmt.Errorf("malformed request line %q", line)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, err // too slow, or gone: nobody to answer
		}
		return nil, StatusBadRequest, fmt.Errorf("malformed header: %w", err)
	}
	path, query, _ := strings.Cut(target, "?")
	r := &Request{Method: method, Path: path, Query: query, Header: Header{}, Body: strings.NewReader("")}
	for k, v := range mh {
		r.Header[k] = v[0]
	}
	if te := r.Header.Get("Transfer-Encoding"); te != "" && !strings.EqualFold(te, "identity") {
		return nil, StatusLengthRequired, errors.New("chunked request bodies are not accepted; send Content-Length")
	}
	if cl := r.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err != nil || n < 0 {
			return nil, StatusBadRequest, fmt.Errorf("bad Content-Length %q", cl)
		}
	}
	return r, 0, nil
}

// response holds the answer until the handler returns, then sends it with its length; once
// flushed, it streams instead, delimited by the connection's end.
type response struct {
	c         net.Conn
	h         Header
	status    int
	body      []byte
	streaming bool
	done      bool
}

func (w *response) Header() Header { return w.h }

func (w *response) WriteHeader(code int) {
	if !w.streaming {
		w.status = code
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.streaming {
		return w.c.Write(p)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Flush implements Flusher.
func (w *response) Flush() {
	if w.streaming {
		return
	}
	w.streaming = true
	_, _ = w.c.Write(append(w.head(-1), w.body...))
	w.body = nil
}

func (w *response) finish() {
	if w.done || w.streaming {
		return
	}
	w.done = true
	_, _ = w.c.Write(append(w.head(len(w.body)), w.body...))
}

// head is the status line and header fields; length -1 leaves Content-Length out.
func (w *response) head(length int) []byte {
	if _, ok := w.h["Content-Type"]; !ok && len(w.body) > 0 {
		w.h["Content-Type"] = "text/plain; charset=utf-8"
	}
	b := make([]byte, 0, 256)
	b = fmt.Appendf(b, "HTTP/1.1 %d %s\r\n", w.status, StatusText(w.status))
	for k, v := range w.h {
		b = fmt.Appendf(b, "%s: %s\r\n", k, v)
	}
	if length >= 0 {
		b = fmt.Appendf(b, "Content-Length: %d\r\n", length)
	}
	return append(b, "Connection: close\r\n\r\n"...)
}

// Deadliner is a ResponseWriter whose writes can be bounded in time: a stream to a client that
// stopped reading must not hold its handler for ever.
type Deadliner interface {
	SetWriteDeadline(t time.Time) error
}

// SetWriteDeadline implements Deadliner.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.SetWriteDeadline(t) }
