// Package web serves tend's web page on TCP: one page built into the binary (the live list,
// per-app CPU and memory charts, a log tail, custom metrics, events, restart/reload/stop
// buttons) and the few routes it needs, every one behind a token; never the control API.
package web

import (
	"bufio"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/logs"
	"github.com/tend-sh/tend/internal/wire"
)

//go:embed page.html
var page []byte

// Token is a new random token: 128 bits from the kernel, in hex.
func Token() (string, error) {
	b := make([]byte, 16)
	if _, err := unix.Getrandom(b, 0); err != nil {
		return "", fmt.Errorf("no random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Server is the page's handler over a daemon's client.
type Server struct {
	C     client.API
	Token string
	// Header and Cells are the process row as `tend ls` and monit render it: the page shows
	// the same cells (status words, units), so that every screen says the same.
	Header []string
	Cells  func(p api.Process, now time.Time) []string
	// Sleep waits before a refusal; tests make it instant.
	Sleep func(time.Duration)

	mu       sync.Mutex
	failures map[string]int // refused requests by peer address, for the growing delay
}

// Handler is the routes, each behind the token.
func (s *Server) Handler() wire.Handler {
	mux := wire.NewServeMux()
	mux.HandleFunc("GET /", s.page)
	mux.HandleFunc("GET /api/list", s.list)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/logs", s.logs)
	mux.HandleFunc("POST /api/action", s.action)
	return wire.HandlerFunc(func(w wire.ResponseWriter, r *wire.Request) {
		if !s.allowed(r) {
			s.refuse(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// allowed checks the token: the Authorization header (Bearer), or ?token= (the page's first
// load and its event stream, which cannot send headers).
func (s *Server) allowed(r *wire.Request) bool {
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == "" {
		q, _ := url.ParseQuery(r.Query)
		got = q.Get("token")
	}
	return s.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) == 1
}

// refuse answers 401 and nothing else; after 10 refusals from one address each next one waits
// longer (100 ms, doubling to 5 s), so that guessing the token is slow.
func (s *Server) refuse(w wire.ResponseWriter, r *wire.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	s.mu.Lock()
	if s.failures == nil {
		s.failures = map[string]int{}
	}
	s.failures[host]++
	n := s.failures[host]
	s.mu.Unlock()
	if n > 10 {
		d := min(100*time.Millisecond<<min(n-11, 6), 5*time.Second)
		if s.Sleep != nil {
			s.Sleep(d)
		} else {
			time.Sleep(d)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(401)
	w.Write([]byte("unauthorized\n"))
}

func (s *Server) page(w wire.ResponseWriter, r *wire.Request) {
	if r.Path != "/" {
		w.WriteHeader(wire.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Write(page)
}

func writeJSON(w wire.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w wire.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// list is the processes, and each one's row as the other screens render it.
func (s *Server) list(w wire.ResponseWriter, r *wire.Request) {
	procs, err := s.C.Rows()
	if err != nil {
		fail(w, 503, err.Error())
		return
	}
	rows := make([][]string, len(procs))
	now := time.Now()
	for i, p := range procs {
		if s.Cells != nil {
			rows[i] = s.Cells(p, now)
		}
	}
	writeJSON(w, struct {
		Header []string      `json:"header"`
		Rows   [][]string    `json:"rows"`
		Procs  []api.Process `json:"procs"`
	}{s.Header, rows, procs})
}

// logs is the last lines of an instance's out and error logs.
func (s *Server) logs(w wire.ResponseWriter, r *wire.Request) {
	q, _ := url.ParseQuery(r.Query)
	id, err := strconv.Atoi(q.Get("id"))
	if err != nil {
		fail(w, 400, "id must be a pm_id")
		return
	}
	procs, err := s.C.Rows()
	if err != nil {
		fail(w, 503, err.Error())
		return
	}
	type line struct {
		Text string `json:"text"`
		Err  bool   `json:"err"`
	}
	out := []line{}
	for _, p := range procs {
		if p.PmID != id {
			continue
		}
		for i, path := range []string{p.Pm2Env.PmOutLogPath, p.Pm2Env.PmErrLogPath} {
			if path == "" || path == "/dev/null" || (i == 1 && path == p.Pm2Env.PmOutLogPath) {
				continue
			}
			lines, _, _ := logs.Tail(path, 50)
			for _, l := range lines {
				out = append(out, line{l, i == 1})
			}
		}
	}
	writeJSON(w, out)
}

// action restarts, reloads or stops one instance.
func (s *Server) action(w wire.ResponseWriter, r *wire.Request) {
	q, _ := url.ParseQuery(r.Query)
	verb, id := q.Get("verb"), q.Get("id")
	if verb != "restart" && verb != "reload" && verb != "stop" {
		fail(w, 400, "verb must be restart, reload or stop")
		return
	}
	if _, err := strconv.Atoi(id); err != nil {
		fail(w, 400, "id must be a pm_id")
		return
	}
	if err := s.C.Action(verb, id); err != nil {
		fail(w, 422, err.Error())
		return
	}
	writeJSON(w, map[string]string{"ok": verb + " " + id})
}

// events streams the daemon's events as server-sent events, until either side goes.
func (s *Server) events(w wire.ResponseWriter, r *wire.Request) {
	stream, err := s.C.Events()
	if err != nil {
		fail(w, 503, err.Error())
		return
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	f, _ := w.(wire.Flusher)
	if f != nil {
		f.Flush()
	}
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		msg := ": beat\n\n" // the daemon's heartbeat: finds a browser that is gone
		if len(line) > 0 {
			msg = "data: " + string(line) + "\n\n"
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			return
		}
	}
}
