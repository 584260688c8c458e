package state

import (
	"os"
	"path/filepath"
	"testing"
)

// A registry file as a crash, a full disk or a hand may leave it: Load gives the registry or an
// error, never a panic.
func FuzzLoadRegistry(f *testing.F) {
	f.Add([]byte(`{"apps":[{"spec":{"name":"a","script":"/bin/sleep","cwd":"/"},"instances":[{"pm_id":0,"index":0,"status":"online","pid":1}]}],"next_id":1}`))
	f.Add([]byte(`{"apps":null}`))
	f.Add([]byte(`{"apps":[{"spec":{"name":"a","script":"/bin/sleep","cwd":"/"},"instanc`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "registry.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		reg, err := Load(path)
		if err == nil && reg == nil {
			t.Error("no registry and no error for a file that exists")
		}
	})
}
