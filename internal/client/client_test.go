package client

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
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
	if !errors.As(err, &ce) || ce.Kind != api.KindNotFound || ce.Msg != `no app named "x"` {
		t.Fatalf("err = %#v", err)
	}
}

func TestNoDaemonWithoutAutoStart(t *testing.T) {
	c := New(t.TempDir(), "1", nil)
	c.AutoStart = false
	c.Timeout = time.Second
	err := c.Do("GET", api.PathPing, nil, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach the daemon") {
		t.Fatalf("err = %v", err)
	}
}
