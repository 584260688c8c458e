package metrics

import (
	"os"
	"testing"
	"time"
)

func TestSampleSelf(t *testing.T) {
	s := NewSampler()
	pid := os.Getpid()
	s.Sample([]int{pid})
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) { // burn CPU so the next sample sees some
	}
	s.Sample([]int{pid, 999999999})
	u := s.Get(pid)
	if u.Memory <= 0 || u.CPU <= 0 {
		t.Fatalf("usage of a busy process: %+v", u)
	}
	if got := s.Get(999999999); got != (Usage{}) {
		t.Fatalf("a missing pid has no usage: %+v", got)
	}
	s.Sample(nil)
	if u := s.Get(pid); u.CPU != 0 || u.Memory <= 0 {
		t.Fatalf("a pid not sampled reads its memory on demand and has no CPU share: %+v", u)
	}
}
