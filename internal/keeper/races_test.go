package keeper

import (
	"os"
	"strings"
	"testing"
	"time"
)

// These tests show that the keeper decides what a daemon's death means before it has read all
// that the daemon said: the SIGCHLD of the daemon and the messages it sent just before exiting
// race (run's SIGCHLD case reads k.bye, k.replace and everServe at once, while serve may still
// be reading the channel). A burst of messages before the last one makes the keeper read late
// enough that it loses every time.

// waitExitOr waits until the keeper exits (true) or file appears (false).
func (k *keeperProc) waitExitOr(t *testing.T, file string) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		select {
		case <-k.done:
			return true
		default:
		}
		if exists(k.path(file)) {
			return false
		}
	}
	t.Fatalf("the keeper neither exited nor wrote %s", file)
	return false
}

// A daemon that says bye behind a burst of puts and exits at once stops the keeper: the keeper
// judges a daemon's death only once its channel has been read to the end, so the bye is seen
// even when the keeper reaps the daemon first (else `tend kill` would start a new daemon).
func TestRunByeAfterBurst(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "hello+serving+fatputs+bye+exit0;hello+serving+bye+exit0")
	if !k.waitExitOr(t, "daemon.2") {
		t.Fatal("the keeper restarted a daemon that had said bye")
	}
	if code := k.wait(t); code != 0 {
		t.Fatalf("the keeper exited %d", code)
	}
}

// Likewise a daemon that served and then died is not taken for one that died at start because
// its "serving" came behind the puts of an adoption (the keeper would exit, and every fd it
// kept for the apps would be closed).
func TestRunServingAfterBurst(t *testing.T) {
	t.Parallel()
	k := startKeeper(t, t.TempDir(), "hello+fatputs+serving+exit0;hello+serving+bye+exit0")
	if k.waitExitOr(t, "daemon.2") {
		b, _ := os.ReadFile(k.out)
		if strings.Contains(string(b), "exited at start") {
			t.Fatal("the keeper took a daemon that had served for one that died at start, and exited")
		}
		t.Fatalf("the keeper exited:\n%s", b)
	}
}
