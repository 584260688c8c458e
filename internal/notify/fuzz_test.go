package notify

import (
	"strings"
	"testing"
)

// A readiness datagram, whatever its bytes: READY=1 on a line of its own (blanks aside) counts,
// nothing else does, and nothing panics.
func FuzzSaysReady(f *testing.F) {
	for _, s := range []string{"READY=1", "STATUS=x\nREADY=1\n", "READY=0", "READY=11", " READY=1 \r", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := false
		for _, l := range strings.Split(string(b), "\n") {
			want = want || strings.TrimSpace(l) == "READY=1"
		}
		if got := saysReady(b); got != want {
			t.Errorf("saysReady(%q) = %v", b, got)
		}
	})
}
