//go:build !linux

package logs

import (
	"errors"
	"time"
)

// Without epoll, pumps read their blocking fd directly (one thread per waiting pump).
type waiter struct{}

func sharedWaiter() (*waiter, error) { return nil, errors.New("no shared waiter on this system") }

func (w *waiter) add(fd int) (chan struct{}, error)                       { return nil, errors.ErrUnsupported }
func (w *waiter) remove(fd int)                                           {}
func (w *waiter) wait(fd int, ch chan struct{}, deadline time.Time) error { return nil }
func (w *waiter) park(fd int, resume func()) error                        { return errors.ErrUnsupported }
