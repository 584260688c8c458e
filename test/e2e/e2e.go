// Package e2e is the harness of tend's end-to-end tests (test/ and test/faults/): it builds the
// real binary and the test app once, gives each test a daemon in its own $TEND_HOME, drives the
// CLI, and proves at the end that nothing the test started is left and that tend.log holds no
// error the test did not expect. Only tests import it.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var (
	// TendBin is the tend binary every harness runs unless a test gives its own.
	TendBin string
	// AppBin is test/testapp: the app a test starts when it needs one that does as told.
	AppBin string
)

// Main is a package's TestMain: it exits with Run's code.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run builds TendBin and AppBin, runs the package's tests, and returns their exit code.
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tend-e2e-bin")
	if err != nil {
		panic(err)
	}
	// Built once and without -race: the daemon and the apps are not what -race checks here, and
	// a race-instrumented daemon would make every test slow on 2 cores.
	TendBin = filepath.Join(dir, "tend")
	AppBin = filepath.Join(dir, "testapp")
	for _, b := range [][2]string{{TendBin, "github.com/tend-sh/tend/cmd/tend"}, {AppBin, "github.com/tend-sh/tend/test/testapp"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	defer os.RemoveAll(dir)
	if bin := os.Getenv("TEND_E2E_TEND"); bin != "" {
		// Another build of tend under the same tests: the fault suite's "before" figures.
		TendBin = bin
	}
	return m.Run()
}

// Poll checks cond until it holds or timeout passes, and says whether it held.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitUntil is Poll that fails the test, saying what was awaited, when cond does not hold in time.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
