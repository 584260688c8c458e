package errdefs

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestKindRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		err  error
		kind string
	}{
		{fmt.Errorf("%w: no app named %q", ErrNotFound, "x"), KindNotFound},
		{fmt.Errorf("app: %w", fmt.Errorf("%w: bad", ErrInvalid)), KindInvalid},
		{Newf(ErrInvalid, "--name is empty"), KindInvalid},
		{errors.Join(errors.New("a"), Newf(ErrNotFound, "b")), KindNotFound},
		{ErrNotRunning, KindFailed},
		{ErrClosing, KindFailed},
		{errors.New("boom"), KindFailed},
	} {
		if got := Kind(tt.err); got != tt.kind {
			t.Errorf("Kind(%v) = %q, want %q", tt.err, got, tt.kind)
		}
		if s := FromKind(tt.kind); tt.kind != KindFailed && !errors.Is(tt.err, s) {
			t.Errorf("FromKind(%q) = %v, not a kind of %v", tt.kind, s, tt.err)
		}
	}
	for _, k := range []string{KindFailed, KindInternal, "conflict", ""} {
		if FromKind(k) != nil {
			t.Errorf("FromKind(%q) should be nil", k)
		}
	}
}

func TestNewf(t *testing.T) {
	err := Newf(ErrUnreachable, "home %s: %w", "/x", io.EOF)
	if err.Error() != "home /x: EOF" {
		t.Errorf("message %q", err.Error())
	}
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, io.EOF) || errors.Is(err, ErrNotFound) {
		t.Errorf("kinds of %v", err)
	}
}
