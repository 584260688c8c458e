// Package errdefs holds tend's error kinds: a few sentinels that every layer wraps with %w and
// callers test with errors.Is, and the one mapping between a kind and its name on the wire.
// Exit codes are decided from these kinds in internal/cli, HTTP statuses in the daemon's routes.
package errdefs

import (
	"errors"
	"fmt"
)

// The kinds. Their texts are the prefixes that wrapped messages have always carried ("not found:
// no app named …"), so a sentinel can replace an older one of the same text without changing a
// message.
var (
	// ErrInvalid marks an error in what the user asked for (a flag, an argument, a spec), as
	// opposed to a failure to do it: exit code 2, HTTP 400.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound means a selector (a name, an id, a namespace) matched nothing: exit code 3,
	// HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrUnreachable means no daemon answered and none could be started: exit code 4. It never
	// crosses the wire.
	ErrUnreachable = errors.New("daemon unreachable")
	// ErrNotRunning is an action that needs a running process, asked of one that is not.
	ErrNotRunning = errors.New("not running")
	// ErrClosing is a request that comes after the daemon began to stop.
	ErrClosing = errors.New("the daemon is stopping; start again once it is gone")
	// ErrAlreadyRunning means another daemon holds the same $TEND_HOME.
	ErrAlreadyRunning = errors.New("a tend daemon already runs")
)

// Wire names of the kinds, in api.Error's kind field.
const (
	KindNotFound = "not_found"
	KindInvalid  = "invalid"
	KindInternal = "internal" // a panic in the daemon
	KindFailed   = "failed"   // any other failure to do what was asked
)

// wire is the one table between kinds and their wire names, in the order Kind tests them.
var wire = [...]struct {
	err  error
	kind string
}{
	{ErrNotFound, KindNotFound},
	{ErrInvalid, KindInvalid},
}

// Kind names err's kind on the wire: KindNotFound, KindInvalid, or KindFailed for any other
// error.
func Kind(err error) string {
	for _, w := range wire {
		if errors.Is(err, w.err) {
			return w.kind
		}
	}
	return KindFailed
}

// FromKind is the sentinel of a wire name, or nil for a kind that has none (failed, internal,
// or one this version does not know).
func FromKind(kind string) error {
	for _, w := range wire {
		if w.kind == kind {
			return w.err
		}
	}
	return nil
}

// Newf returns an error of the given kind whose message is the formatted sentence alone, without
// the kind's prefix. errors.Is finds the kind, and any error the format wraps with %w.
func Newf(kind error, format string, a ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, a...)}
}

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
