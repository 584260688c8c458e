package web

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/wire"
)

// fakeAPI answers Rows with one app; the rest of client.API is not used by these tests.
type fakeAPI struct {
	client.API
}

func (fakeAPI) Rows() ([]api.Process, error) {
	return []api.Process{{Name: "secret-app", PmID: 0}}, nil
}
func (fakeAPI) Events() (io.ReadCloser, error) { return nil, errors.New("no events here") }

type recorder struct {
	h      wire.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() wire.Header         { return r.h }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func serve(s *Server, method, target, auth, remote string) *recorder {
	path, query, _ := strings.Cut(target, "?")
	req := &wire.Request{Method: method, Path: path, Query: query, Header: wire.Header{}, Body: strings.NewReader(""), RemoteAddr: remote}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := &recorder{h: wire.Header{}, status: 200}
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// Without the token, or with a wrong one, every route answers 401 and nothing of the apps; after
// ten refusals from one address each next one waits longer.
func TestToken(t *testing.T) {
	var waits []time.Duration
	s := &Server{C: fakeAPI{}, Token: "right", Sleep: func(d time.Duration) { waits = append(waits, d) }}
	for _, c := range []struct{ method, target, auth string }{
		{"GET", "/", ""}, {"GET", "/api/list", ""}, {"GET", "/api/list?token=wrong", ""},
		{"GET", "/api/list", "Bearer wrong"}, {"POST", "/api/action?verb=restart&id=0", ""}, {"GET", "/api/events", ""},
		{"GET", "/api/logs?id=0", "Bearer "}, {"GET", "/v1/processes", ""},
	} {
		rec := serve(s, c.method, c.target, c.auth, "10.0.0.1:5000")
		if rec.status != 401 || rec.body.String() != "unauthorized\n" {
			t.Errorf("%s %s (%q): %d %q", c.method, c.target, c.auth, rec.status, rec.body.String())
		}
	}
	for range 4 {
		serve(s, "GET", "/api/list", "", "10.0.0.1:5001")
	}
	if len(waits) != 2 || waits[0] != 100*time.Millisecond || waits[1] != 200*time.Millisecond {
		t.Errorf("waits after the tenth refusal: %v, want 100ms then 200ms", waits)
	}
	if rec := serve(s, "GET", "/api/list", "", "10.0.0.2:5000"); rec.status != 401 || len(waits) != 2 {
		t.Error("another address waits for the first one's refusals")
	}
	// The right token, in the header or the query.
	s.Header, s.Cells = []string{"name"}, func(p api.Process, _ time.Time) []string { return []string{"cell:" + p.Name} }
	if rec := serve(s, "GET", "/api/list", "Bearer right", "10.0.0.1:1"); rec.status != 200 || !strings.Contains(rec.body.String(), `"rows":[["cell:secret-app"]]`) {
		t.Errorf("with the token: %d %q", rec.status, rec.body.String())
	}
	if rec := serve(s, "GET", "/?token=right", "", "10.0.0.1:1"); rec.status != 200 || !strings.Contains(rec.body.String(), "<title>tend</title>") {
		t.Errorf("the page with ?token=: %d", rec.status)
	}
	if rec := serve(s, "POST", "/api/action?verb=delete&id=0", "Bearer right", "x:1"); rec.status != 400 {
		t.Errorf("delete through the page: %d, want 400 (only restart, reload, stop)", rec.status)
	}
	if rec := serve(s, "GET", "/v1/processes", "Bearer right", "x:1"); rec.status != 404 {
		t.Errorf("the control API through the page's port: %d", rec.status)
	}
	if tok, err := Token(); err != nil || len(tok) != 32 {
		t.Errorf("Token: %q %v", tok, err)
	}
}
