package client

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errdefs"
)

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "tend.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return dir
}

func TestVersionWarningOnce(t *testing.T) {
	home := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHead, "9.9.9")
		w.Write([]byte(`{"version":"9.9.9"}`))
	})
	var warn bytes.Buffer
	c := New(home, "1.0.0", &warn)
	c.AutoStart = false
	for range 3 {
		if err := c.Do("GET", api.PathPing, nil, &api.Ping{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(warn.String(), "warning: the tend daemon runs version 9.9.9 and this CLI is 1.0.0"); got != 1 {
		t.Fatalf("want one warning, got %d: %q", got, warn.String())
	}
}

func TestErrorsKeepTheirKind(t *testing.T) {
	home := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no app named \"x\"","kind":"not_found"}`))
	})
	c := New(home, "1", nil)
	c.AutoStart = false
	err := c.Do("POST", api.PathAction+"stop", api.TargetRequest{Target: "x"}, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != errdefs.KindNotFound || ce.Msg != `no app named "x"` {
		t.Fatalf("err = %#v", err)
	}
}

func TestNoDaemonWithoutAutoStart(t *testing.T) {
	c := New(t.TempDir(), "1", nil)
	c.AutoStart = false
	c.Timeout = time.Second
	err := c.Do("GET", api.PathPing, nil, nil)
	if !errors.Is(err, errdefs.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach the daemon") {
		t.Fatalf("err = %v", err)
	}
}

// Each typed call is one request on its route, with its body, and decodes its answer.
func TestTypedCalls(t *testing.T) {
	var got []string
	home := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		body.ReadFrom(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+body.String())
		switch r.URL.Path {
		case api.PathPing:
			w.Write([]byte(`{"version":"1","pid":2147483000,"home":"/h"}`))
		case api.PathJlist:
			w.Write([]byte(`[{"pid":3,"name":"api","pm_id":0}]` + "\n"))
		case api.PathMessage, api.PathStdin:
			w.Write([]byte(`{"ids":[0,1]}`))
		default:
			w.Write([]byte(`{}`))
		}
	})
	c := New(home, "1", nil)
	c.AutoStart = false
	if !c.Running() {
		t.Fatal("not running")
	}
	if p, err := c.Ping(); err != nil || p.Pid != 2147483000 || p.Home != "/h" {
		t.Fatalf("ping %+v %v", p, err)
	}
	if ps, err := c.List(); err != nil || len(ps) != 1 || ps[0].Name != "api" || ps[0].Pid != 3 {
		t.Fatalf("list %+v %v", ps, err)
	}
	if raw, err := c.JlistRaw(); err != nil || string(raw) != `[{"pid":3,"name":"api","pm_id":0}]`+"\n" {
		t.Fatalf("raw %q %v", raw, err)
	}
	if res, err := c.Message("api", []byte(`"hi"`)); err != nil || len(res.IDs) != 2 {
		t.Fatalf("message %+v %v", res, err)
	}
	if res, err := c.Stdin("api", "line"); err != nil || len(res.IDs) != 2 {
		t.Fatalf("stdin %+v %v", res, err)
	}
	for _, err := range []error{
		c.Start(api.StartRequest{Mode: "reload"}), c.Action("stop", "api"), c.Scale("api", 3), c.Signal("api", "SIGUSR2"), c.Kill(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"GET /v1/ping ", "GET /v1/processes ", "GET /v1/processes ",
		`POST /v1/messages {"target":"api","message":"hi"}`, `POST /v1/stdin {"target":"api","line":"line"}`,
		`POST /v1/apps {"apps":null,"mode":"reload"}`, `POST /v1/actions/stop {"target":"api"}`,
		`POST /v1/scale {"name":"api","count":3}`, `POST /v1/signal {"target":"api","signal":"SIGUSR2"}`,
		"GET /v1/ping ", "POST /v1/kill ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestErrorKinds(t *testing.T) {
	for kind, want := range map[string]error{errdefs.KindNotFound: errdefs.ErrNotFound, errdefs.KindInvalid: errdefs.ErrInvalid} {
		if err := error(&Error{Kind: kind, Msg: "m"}); !errors.Is(err, want) || err.Error() != "m" {
			t.Errorf("kind %s: %v is not %v", kind, err, want)
		}
	}
	if err := error(&Error{Kind: "failed"}); errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a failure has no kind: %v", err)
	}
}

// Kill never starts a daemon, even on a client that would.
func TestKillNeverStartsADaemon(t *testing.T) {
	c := New(t.TempDir(), "1", nil)
	c.Timeout = time.Second
	if err := c.Kill(); !errors.Is(err, errdefs.ErrUnreachable) || !c.AutoStart {
		t.Fatalf("err = %v, autostart %v", err, c.AutoStart)
	}
}

func TestHomeNotAFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(file, "1", nil)
	err := c.Do("GET", api.PathPing, nil, nil)
	if !errors.Is(err, errdefs.ErrUnreachable) || err.Error() != "TEND_HOME "+file+" is not a folder; set TEND_HOME to a folder you own" {
		t.Fatalf("err = %v", err)
	}
	c = New(filepath.Join(file, "sub"), "1", nil)
	if err := c.StartDaemon(); !errors.Is(err, errdefs.ErrUnreachable) || !strings.Contains(err.Error(), "cannot be created: not a directory") {
		t.Fatalf("start under a file: %v", err)
	}
}
