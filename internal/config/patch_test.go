package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPatch(t *testing.T) {
	base := Defaults()
	base.Name, base.Script, base.Cwd = "api", "/srv/app.js", "/srv"
	base.InterpreterArgs = []string{"--harmony"}

	s := base
	if err := s.Patch(map[string]any{"name": "web", "node_args": "--a --b", "kill_timeout": "5s", "autorestart": false}); err != nil {
		t.Fatal(err)
	}
	if s.Name != "web" || !slices.Equal(s.InterpreterArgs, []string{"--a", "--b"}) || s.KillTimeout != 5*time.Second || s.Autorestart {
		t.Errorf("patched: %+v", s)
	}
	if !slices.Equal(base.InterpreterArgs, []string{"--harmony"}) {
		t.Errorf("the patch changed the spec it copied: %v", base.InterpreterArgs)
	}

	s = base
	if err := s.Patch(map[string]any{"node_args": "null"}); err != nil || s.InterpreterArgs != nil || !s.NodeArgsDropped {
		t.Errorf("node_args null: %v, %+v", err, s)
	}
	if err := s.Patch(map[string]any{"node_args": "--x"}); err != nil || s.NodeArgsDropped {
		t.Errorf("node_args after null: %v, dropped %v", err, s.NodeArgsDropped)
	}

	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"script": "/srv/b.js"}, "script cannot change on a restart"},
		{map[string]any{"instances": "4"}, "tend scale"},
		{map[string]any{"kill_timeout": "null"}, "kill_timeout cannot be null"},
		{map[string]any{"name": " "}, "name is empty"},
		{map[string]any{"kill_timeout": "soon", "name": "x"}, "kill_timeout"},
		{map[string]any{"kill_signal": "SIGNOPE"}, "kill_signal"},
	} {
		s := base
		err := s.Patch(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Patch(%v): %v, want an invalid error with %q", c.m, err, c.want)
		}
		if s.Name != "api" || s.KillTimeout != base.KillTimeout {
			t.Errorf("Patch(%v) failed and still changed the spec: %+v", c.m, s)
		}
	}
}
