package proc

import (
	"bytes"
	"os"
	"testing"
)

// /proc/<pid>/stat as the kernel writes it, or anything: parseStat never panics, and what it
// parses has 22 fields after the command's ')'.
func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("0)00"))
	f.Add([]byte("1 (a (b) c) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 100 0 300 18446744073709551615"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseStat(b); err == nil && bytes.LastIndexByte(b, ')') < 0 {
			t.Errorf("parsed a stat with no command: %q", b)
		}
	})
}
