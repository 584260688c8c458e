package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/ipc"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/test/e2e"
)

var recvLine = regexp.MustCompile(`(?m)^recv seq=(\d+) bytes=(\d+)$`)

// received lists the seq of each message the -recv app logged, in order, with their sizes.
func received(path string) (seqs, sizes []int) {
	data, _ := os.ReadFile(path)
	for _, m := range recvLine.FindAllStringSubmatch(string(data), -1) {
		seq, _ := strconv.Atoi(m[1])
		size, _ := strconv.Atoi(m[2])
		seqs, sizes = append(seqs, seq), append(sizes, size)
	}
	return seqs, sizes
}

// startPair starts a receiver and a sender whose -send-to names it; both get an IPC channel from
// their --port.
func startPair(t *testing.T, h *e2e.Harness, sendArgs ...string) (recv, send e2e.Proc) {
	h.OK("start", e2e.AppBin, "--name", "recv", "--port", strconv.Itoa(e2e.FreePort(t)), "-s", "--", "-recv")
	recv = h.WaitOnline("recv", 1)[0]
	h.OK(append([]string{"start", e2e.AppBin, "--name", "send", "--port", strconv.Itoa(e2e.FreePort(t)), "-s", "--", "-send-to", "recv"}, sendArgs...)...)
	send = h.WaitOnline("send", 1)[0]
	return recv, send
}

// One app sends another 10,000 messages as fast as its channel takes them: tend routes every
// one, in order, and answers the CLI meanwhile.
func TestIPCFlood(t *testing.T) {
	t.Parallel()
	n := scale(10_000, 100_000)
	fault := fmt.Sprintf("an IPC flood of %d messages", n)
	h := e2e.New(t)
	start := time.Now()
	recv, send := startPair(t, h, "-send", strconv.Itoa(n), "-send-size", "100")
	var seqs []int
	e2e.WaitUntil(t, 60*time.Second, "every message received", func() bool {
		seqs, _ = received(recv.Pm2Env.PmOutLogPath)
		return len(seqs) >= n
	})
	took := time.Since(start)
	disorder := 0
	for i, s := range seqs {
		if s != i {
			disorder++
		}
	}
	lost(t, fault, int64(n-len(seqs)+disorder), fmt.Sprintf("messages lost, doubled or out of order of %d", n))
	if p, _ := h.Get("send"); p.Pid != send.Pid || p.Pm2Env.RestartTime != 0 {
		lost(t, fault, 1, "restart of the sender")
	}
	allowed(t, fault, "all delivered within %v", took.Round(time.Millisecond))
}

// Long messages: those under the daemon's bound (512 MiB, more than any Node app can send) are
// delivered whole; one over it is dropped, counted and said, and the sender's channel stays
// open, so the message after it arrives and nothing restarts.
func TestIPCLongMessages(t *testing.T) {
	t.Parallel()
	sizes := []int{50_000_000, 600_000_000, 10}
	if full {
		sizes = []int{50_000_000, 300_000_000, 600_000_000, 10}
	}
	var mbs, list []string
	under := 0
	for _, size := range sizes[:len(sizes)-1] {
		mbs = append(mbs, fmt.Sprintf("%d MB", size/1_000_000))
	}
	for _, size := range sizes {
		list = append(list, strconv.Itoa(size))
		if size <= ipc.MaxMessage {
			under++
		}
	}
	fault := "IPC messages of " + strings.Join(mbs, ", ")
	h := e2e.New(t)
	recv, send := startPair(t, h, "-send", strconv.Itoa(len(sizes)), "-send-size", strings.Join(list, ","))
	last := len(sizes) - 1
	var seqs, lens []int
	e2e.Poll(60*time.Second, func() bool {
		seqs, lens = received(recv.Pm2Env.PmOutLogPath)
		return len(seqs) > 0 && seqs[len(seqs)-1] == last
	})
	delivered := 0
	for i, seq := range seqs {
		if sizes[seq] <= ipc.MaxMessage && lens[i] > sizes[seq] {
			delivered++
		}
	}
	lost(t, fault, int64(under-delivered), fmt.Sprintf("messages under the bound lost of %d", under))
	log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	said := strings.Count(string(log), "a message longer than the daemon keeps was dropped")
	if said == len(sizes)-under {
		allowed(t, fault, "the one over %d MiB dropped and said in tend.log", ipc.MaxMessage>>20)
	} else {
		lost(t, fault, int64(abs(said-(len(sizes)-under))), fmt.Sprintf("drops said wrongly (said %d times, want %d)", said, len(sizes)-under))
	}
	for _, p := range h.Jlist() {
		if p.Pm2Env.Status != "online" || p.Pm2Env.RestartTime != 0 || (p.Name == "send" && p.Pid != send.Pid) {
			lost(t, fault, 1, "restart of "+p.Name)
		}
	}
}

// An app that asks for a new listening socket again and again (queryServer of port 0, as a
// Node server that listens in a loop does) gets the per-app cap and no more: the daemon's fds
// stay bounded and come back when the app goes, the cap is said once, and other apps start.
func TestPortHungryApp(t *testing.T) {
	t.Parallel()
	asks := scale(1000, 5000)
	fault := fmt.Sprintf("an app asking for %d listening sockets", asks)
	h := e2e.New(t)
	// An app that logs: the daemon opens what logging needs once (/dev/null, for the pumps) before
	// the count that the end is compared with.
	h.OK("start", e2e.AppBin, "--name", "calm", "-s", "--", "-flood", "100")
	e2e.WaitFile(t, h.WaitStatus("calm", "online").Pm2Env.PmOutLogPath, 10*time.Second, func(s string) bool { return strings.Count(s, "\n") == 100 })
	dpid := h.PidFile("daemon.pid")
	base := len(e2e.SettledFds(t, dpid))
	h.OK("start", e2e.AppBin, "--name", "hungry", "--port", strconv.Itoa(e2e.FreePort(t)), "-s", "--", "-ask-ports", strconv.Itoa(asks))
	p := h.WaitOnline("hungry", 1)[0]
	out := e2e.WaitFile(t, p.Pm2Env.PmOutLogPath, 60*time.Second, func(s string) bool { return strings.Contains(s, "ports granted=") })
	var granted, refused int
	fmt.Sscanf(out[strings.Index(out, "ports granted="):], "ports granted=%d refused=%d", &granted, &refused)
	peak := len(e2e.SettledFds(t, dpid))
	h.OK("start", e2e.AppBin, "--name", "after", "--port", strconv.Itoa(e2e.FreePort(t)), "-s", "--", "-serve")
	h.WaitOnline("after", 1)
	h.OK("delete", "hungry", "after", "-s")
	end := len(e2e.SettledFds(t, dpid))

	log, _ := os.ReadFile(filepath.Join(h.Home, "tend.log"))
	said := strings.Count(string(log), "more than 64 listening sockets")

	if granted+refused != asks {
		t.Errorf("granted %d and refused %d of %d asks: some were not answered", granted, refused, asks)
	}
	lost(t, fault, int64(max(granted-(sockets.MaxPorts-1), 0)), fmt.Sprintf("sockets granted past the cap of %d (one is --port's)", sockets.MaxPorts))
	lost(t, fault, int64(end-base), fmt.Sprintf("daemon fds not given back once the app was deleted (%d before, %d at the peak)", base, peak))
	if said != 1 {
		lost(t, fault, int64(abs(said-1)), fmt.Sprintf("times the cap was said wrongly in tend.log (said %d times, want once)", said))
	}
	allowed(t, fault, "%d sockets granted, %d refused; the daemon held %d more fds at the peak", granted, refused, peak-base)
}
