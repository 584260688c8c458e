package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/config"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.json")
	if reg, err := Load(path); reg != nil || err != nil {
		t.Fatalf("missing registry: %v %v", reg, err)
	}
	spec := config.Defaults()
	spec.Name, spec.Script, spec.Env = "api", "/srv/app.js", map[string]string{"SECRET": "s3cret"}
	want := Registry{NextID: 3, Apps: []App{{Spec: spec, Instances: []Instance{{ID: 2, Status: "online", Pid: 42, StartTick: 99, Restarts: 1}}}}}
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("registry mode %v, want 0600 (it holds environments)", st.Mode().Perm())
	}
	got, err := Load(path)
	want.Version = currentVersion
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%v", got, want, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
	os.WriteFile(path, []byte("{half"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt registry: %v", err)
	}
}
