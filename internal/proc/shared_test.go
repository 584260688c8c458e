package proc

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers during a scan share the next one; a call after a scan gets a scan begun after it.
func TestSharedScan(t *testing.T) {
	var s sharedScan[int]
	var runs atomic.Int32
	gate := make(chan struct{})
	scan := func() int {
		n := int(runs.Add(1))
		if n == 1 {
			<-gate // the first scan is slow: the others come meanwhile
		}
		return n
	}
	first := make(chan int)
	go func() { first <- s.get(scan) }()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	got := make([]int, 10)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = s.get(scan) }()
	}
	for { // until all ten wait on the first scan
		s.mu.Lock()
		n := s.waiting
		s.mu.Unlock()
		if n == len(got) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	if v := <-first; v != 1 {
		t.Errorf("the first caller got scan %d", v)
	}
	wg.Wait()
	for _, v := range got {
		if v != 2 {
			t.Errorf("a caller during the first scan got scan %d, want the shared second one", v)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d scans for 11 callers, want 2", n)
	}
	if v := s.get(scan); v != 3 {
		t.Errorf("a later call got scan %d, want a new one", v)
	}
}
