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
