package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tend-sh/tend/test/e2e"
)

// Another user who can reach tend.sock (its folder and the socket made world-writable by
// mistake) gets nothing: the daemon checks the peer's uid on every connection.
func TestOtherUserIsRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("playing another user needs root")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	h := newHarness(t)
	h.OK("start", e2e.AppBin, "--name", "secretive", "-s")
	sock := filepath.Join(h.Home, "tend.sock")
	os.Chmod(h.Home, 0o755)
	os.Chmod(sock, 0o777)
	defer os.Chmod(h.Home, 0o700)
	// The other user speaks HTTP to the socket itself, as any client could.
	cmd := exec.Command("curl", "-s", "--max-time", "5", "--unix-socket", sock, "http://tend/v1/processes")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "secretive") {
		t.Fatalf("another user read the process list: %s", out)
	}
	if err == nil {
		t.Fatalf("curl as another user succeeded: %q", out)
	}
	log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	if !strings.Contains(string(log), "refused a connection to tend.sock from another user") || !strings.Contains(string(log), "uid=65534") {
		t.Fatalf("tend.log does not say who was refused")
	}
	// The owner still gets in.
	if !strings.Contains(h.OK("jlist"), "secretive") {
		t.Fatal("the owner is refused too")
	}
}
