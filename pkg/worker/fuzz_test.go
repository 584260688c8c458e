package worker

import (
	"strconv"
	"testing"
)

// LISTEN_PID and LISTEN_FDS as any environment holds them: a count between 0 and the bound, or
// an error; never a panic.
func FuzzListenCount(f *testing.F) {
	f.Add("42", "1", 42)
	f.Add("42", "-1", 42)
	f.Add("7", "1", 42)
	f.Add("42", "99999999999999999999", 42)
	f.Add("", "", 1)
	f.Fuzz(func(t *testing.T, pid, fds string, self int) {
		n, err := listenCount(pid, fds, self)
		if err == nil && (n < 0 || n > maxListenFds) {
			t.Errorf("listenCount(%q, %q, %d) = %d", pid, fds, self, n)
		}
		if err == nil && fds != "" && pid != strconv.Itoa(self) {
			t.Errorf("accepted LISTEN_FDS meant for pid %q in %d", pid, self)
		}
	})
}
