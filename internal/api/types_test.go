package api

import (
	"encoding/json"
	"testing"
)

func TestEnvIsCopiedToTheTopLikePM2(t *testing.T) {
	e := Env{Name: "web", Status: "online", Env: map[string]string{"NODE_ENV": "production", "PORT": "3000", "status": "shadowed"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if m["NODE_ENV"] != "production" || m["PORT"] != "3000" || m["status"] != "online" || m["name"] != "web" {
		t.Fatalf("pm2_env: %s", b)
	}
	if env := m["env"].(map[string]any); env["NODE_ENV"] != "production" {
		t.Fatalf("env: %v", env)
	}
	var back Env
	if err := json.Unmarshal(b, &back); err != nil || back.Name != "web" || back.Env["PORT"] != "3000" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// env as PM2 shows it: what tend sets per instance (name, namespace, pm_id, the instance
// variable) is not in it, since pm2_env has those as fields; PM2's module configuration is,
// under the app's name ({} in env, '{}' at the top). ProcessEnv puts the per-instance ones back.
func TestEnvAsPM2ShowsIt(t *testing.T) {
	e := Env{Name: "web", Namespace: "default", PmID: 4, InstanceVar: "NODE_APP_INSTANCE", NodeAppInstance: 2,
		Env: map[string]string{"PORT": "3000", "name": "web", "namespace": "default", "pm_id": "4", "NODE_APP_INSTANCE": "2"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	env := m["env"].(map[string]any)
	if len(env) != 2 || env["PORT"] != "3000" || env["web"] == nil || m["web"] != "{}" || m["NODE_APP_INSTANCE"] != float64(2) {
		t.Fatalf("pm2_env: %s", b)
	}
	var back Env
	if err := json.Unmarshal(b, &back); err != nil || len(back.Env) != 1 {
		t.Fatalf("round trip: %+v %v", back.Env, err)
	}
	if got := back.ProcessEnv(); got["name"] != "web" || got["pm_id"] != "4" || got["NODE_APP_INSTANCE"] != "2" || got["PORT"] != "3000" || len(got) != 5 {
		t.Fatalf("ProcessEnv: %v", got)
	}
}

// The instance number goes under the app's instance_var, as PM2 writes it (APP_ID: 1, and no
// NODE_APP_INSTANCE), and comes back from there.
func TestInstanceNumberUnderItsVariable(t *testing.T) {
	for _, v := range []string{"", "APP_ID"} {
		e := Env{Name: "w", InstanceVar: v, NodeAppInstance: 1}
		b, _ := json.Marshal(e)
		var m map[string]any
		json.Unmarshal(b, &m)
		want := v
		if want == "" {
			want = DefaultInstanceVar
		}
		if m[want] != float64(1) || (v != "" && m[DefaultInstanceVar] != nil) {
			t.Errorf("instance_var %q: %s", v, b)
		}
		var back Env
		if err := json.Unmarshal(b, &back); err != nil || back.NodeAppInstance != 1 {
			t.Errorf("instance_var %q: round trip %d %v", v, back.NodeAppInstance, err)
		}
	}
}

// The increment_var's value is a number in jlist, as PM2 computes it (PORT: 3001), and reads back.
func TestIncrementVarIsANumber(t *testing.T) {
	e := Env{Name: "w", IncrementVar: "PORT", Env: map[string]string{"PORT": "3001", "HOST": "x"}}
	b, _ := json.Marshal(e)
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["PORT"] != float64(3001) || m["env"].(map[string]any)["PORT"] != float64(3001) || m["HOST"] != "x" {
		t.Fatalf("%s", b)
	}
	var back Env
	if err := json.Unmarshal(b, &back); err != nil || back.Env["PORT"] != "3001" {
		t.Fatalf("round trip %v %v", back.Env, err)
	}
}

// An env value the config gave as a number or a boolean is one in jlist (PORT: 3000, DEBUG:
// false), as PM2 keeps it, and reads back as its text.
func TestTypedEnvValues(t *testing.T) {
	e := Env{Name: "w", EnvTyped: []string{"PORT", "DEBUG", "NAME"}, Env: map[string]string{"PORT": "3000", "DEBUG": "false", "NAME": "it's", "HOST": "1"}}
	b, _ := json.Marshal(e)
	var m map[string]any
	json.Unmarshal(b, &m)
	env := m["env"].(map[string]any)
	if env["PORT"] != float64(3000) || env["DEBUG"] != false || env["NAME"] != "it's" || env["HOST"] != "1" || m["PORT"] != float64(3000) {
		t.Fatalf("%s", b)
	}
	var back Env
	if err := json.Unmarshal(b, &back); err != nil || back.Env["PORT"] != "3000" || back.Env["DEBUG"] != "false" {
		t.Fatalf("round trip %v %v", back.Env, err)
	}
}
