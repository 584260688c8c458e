package proc

import (
	"sync"
	"time"
)

// sharedScan is a scan of /proc that concurrent callers share (a `stop all` of 200 apps): a
// caller gets the result of a scan that began after its call, so that a process born before the
// call is in it, and callers that arrive during a scan share the next one rather than each
// reading every process.
type sharedScan[T any] struct {
	mu       sync.Mutex
	cond     *sync.Cond
	scanning bool
	at       time.Time // when the last scan began
	last     T
	ok       bool
	waiting  int // callers waiting for a scan under way (read by a test)
}

// get returns the result of a scan begun after the call, running scan when no such result is
// there or under way. The result is shared and must not be modified.
func (s *sharedScan[T]) get(scan func() T) T {
	called := time.Now()
	s.mu.Lock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	for {
		if s.ok && s.at.After(called) {
			defer s.mu.Unlock()
			return s.last
		}
		if !s.scanning {
			break
		}
		s.waiting++
		s.cond.Wait()
		s.waiting--
	}
	s.scanning = true
	began := time.Now()
	s.mu.Unlock()
	var result T
	done := false
	defer func() { // also when the scan panics: the waiters must not wait for ever
		s.mu.Lock()
		if done {
			s.last, s.at, s.ok = result, began, true
		}
		s.scanning = false
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	result = scan()
	done = true
	return result
}
