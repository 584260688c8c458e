package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// The keeper's records follow tend.log across a rotation (a rename), as the daemon's do.
func TestAppendEachFollowsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.log")
	w := appendEach(path)
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{path + ".1": "one\n", path: "two\n"} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", p, b, err, want)
		}
	}
}
