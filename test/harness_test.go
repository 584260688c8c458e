// Package test holds tend's end-to-end tests: the real binary, a real daemon in a temporary
// $TEND_HOME, real apps (the testapp binary, node, sleep), real files. The harness is package
// e2e, which the fault suite (test/faults) shares.
package test

import (
	"testing"

	"github.com/tend-sh/tend/test/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// harness is e2e's, with the helpers of this package's tests as its methods.
type harness struct{ *e2e.Harness }

type proc = e2e.Proc

func newHarness(t *testing.T) *harness { return &harness{e2e.New(t)} }
