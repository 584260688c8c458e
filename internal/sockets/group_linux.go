// Package sockets owns the listening sockets of cluster mode: for each port an app serves, one
// SO_REUSEPORT socket per instance slot, held by the daemon from the app's start to its stop, and
// a classic BPF program that steers new connections to the slots whose instance is live
// (research/cluster-internals.md §4.3 and §7.1).
package sockets

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrInUse is returned when something outside tend already listens on the port.
var ErrInUse = errors.New("port in use")

// inUse is an ErrInUse with its own sentence.
type inUse struct{ msg string }

func (e inUse) Error() string        { return e.msg }
func (e inUse) Is(target error) bool { return target == ErrInUse || target == unix.EADDRINUSE }

// Probe checks that nobody listens on host:port, by binding without SO_REUSEPORT: a reuseport
// bind would succeed silently beside any same-user reuseport holder (an orphan, another
// TEND_HOME, Node's reusePort), and the two would then share the traffic.
func Probe(host string, port int) error {
	sa, family, err := sockaddr(host, port)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) // TIME_WAIT is no owner
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return inUse{fmt.Sprintf("port %d on %s is already in use by another program (ss -tanp 'sport = :%d' shows which); stop it or pick another port", port, hostOrAll(host), port)}
		}
		return bindError(port, err)
	}
	return nil
}

func bindError(port int, err error) error {
	if errors.Is(err, unix.EACCES) {
		return fmt.Errorf("port %d: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the tend binary)", port)
	}
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("port %d: the address is not one of this machine's (%w)", port, err)
	}
	return fmt.Errorf("port %d: %w", port, err)
}

// Slot is one listening socket of a group: the one the instance of that slot serves.
type Slot struct {
	fd    int
	live  bool
	spare bool // closed by its owner but kept in the array; see Group.Close
}

// Fd is the listening socket; the daemon keeps it open, instances get dups of it.
func (s *Slot) Fd() int { return s.fd }

// Queued is how many connections wait in the socket's accept queue (TCP_INFO's unacked, which
// a listening socket reports as its queue's length).
func (s *Slot) Queued() int {
	ti, err := unix.GetsockoptTCPInfo(s.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return int(ti.Unacked)
}

// Group is the SO_REUSEPORT group of one host:port. socks mirrors the kernel's array of the
// group's sockets: in listen order, and when one closes, the last one moves into its place. The
// BPF program returns indexes into that array, so the mirror must follow the kernel exactly.
//
// A socket is only ever closed at the end of the array, so no index moves under the program:
// between a close that moved the last socket and the program that follows it, the old program
// would point past the array, and the kernel's fallback hash would pick any member, a slot that
// is leaving included (its connection is reset when that slot closes in turn). A slot closed
// elsewhere stays in the array as a spare, never steered to, until it becomes the last one or
// Add reuses it.
type Group struct {
	host string
	port int

	mu    sync.Mutex
	socks []*Slot
}

// NewGroup prepares the group of host:port ("" listens on every address, IPv4 and IPv6, as
// Node's listen(port) does). Call Probe first: a group never refuses to share.
func NewGroup(host string, port int) *Group { return &Group{host: host, port: port} }

// Port is the group's port.
func (g *Group) Port() int { return g.port }

// Add creates, binds and listens one more socket of the group, or reuses a spare. It is not
// live until SetLive.
func (g *Group) Add() (*Slot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.socks {
		if s.spare {
			s.spare = false
			return s, nil
		}
	}
	sa, family, err := sockaddr(g.host, g.port)
	if err != nil {
		return nil, err
	}
	// Non-blocking from birth: Node's libuv expects it, and Go's Fd() would otherwise flip the
	// flag on the shared file description (DESIGN §3b).
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for port %d: %w", g.port, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			return nil, fmt.Errorf("port %d: setsockopt: %w", g.port, err)
		}
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0) // dual stack, as Node
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, bindError(g.port, err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", g.port, err)
	}
	if g.port == 0 { // the first socket picks the port; the others join it
		if local, err := unix.Getsockname(fd); err == nil {
			g.port = portOf(local)
		}
	}
	s := &Slot{fd: fd}
	g.socks = append(g.socks, s)
	ok = true
	// The socket serves even if steering cannot be installed: the kernel's hash then spreads
	// connections over every member, dead ones included. SetLive reports that failure.
	_ = g.attachLocked()
	return s, nil
}

// SetLive includes the slot in the kernel's choice (live) or excludes it, so that a slot whose
// instance is dead or restarting gives its share of new connections to the others. Connections
// already queued on it wait for its next instance.
func (g *Group) SetLive(s *Slot, live bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	s.live = live
	return g.attachLocked()
}

// Close closes the slot's socket, or makes it a spare when it is not the last of the array
// (see Group). Connections still queued on it are reset either way.
func (g *Group) Close(s *Slot) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := g.indexLocked(s)
	if i < 0 || s.spare {
		return nil
	}
	s.live = false
	if i < len(g.socks)-1 {
		s.spare = true
		err := g.attachLocked() // the program steers to no spare, even when none is live
		for {
			fd, _, aerr := unix.Accept4(s.fd, unix.SOCK_CLOEXEC)
			if aerr != nil {
				break
			}
			unix.Close(fd) // queued for an instance that is gone, as a close would
		}
		return err
	}
	var errs []error
	for len(g.socks) > 0 && (g.socks[len(g.socks)-1] == s || g.socks[len(g.socks)-1].spare) {
		last := g.socks[len(g.socks)-1]
		// shutdown takes the socket out of the group even when another process still holds a
		// copy of it (a child that inherited fd 3); close alone would leave it there, and the
		// kernel's array would no longer be what the mirror says.
		_ = unix.Shutdown(last.fd, unix.SHUT_RD)
		errs = append(errs, unix.Close(last.fd))
		g.socks = g.socks[:len(g.socks)-1]
	}
	if len(g.socks) > 0 {
		errs = append(errs, g.attachLocked())
	}
	return errors.Join(errs...)
}

// Slots returns the group's slots in the kernel's order.
func (g *Group) Slots() []*Slot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Slot(nil), g.socks...)
}

func (g *Group) indexLocked(s *Slot) int {
	for i, x := range g.socks {
		if x == s {
			return i
		}
	}
	return -1
}

// attachLocked installs the steering program; attaching through any member sets it for the
// whole group.
func (g *Group) attachLocked() error {
	if len(g.socks) == 0 {
		return nil
	}
	var live, owned []uint32
	for i, s := range g.socks {
		if s.live {
			live = append(live, uint32(i))
		}
		if !s.spare {
			owned = append(owned, uint32(i))
		}
	}
	if len(live) == 0 {
		// No instance serves: connections queue on the slots until one does, never on a spare.
		live = owned
	}
	if len(live) > maxSteered {
		live = nil // a program that long exceeds the kernel's limit: let the hash spread
	}
	prog := steering(live)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(g.socks[0].fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fmt.Errorf("port %d: attach reuseport program: %w", g.port, err)
	}
	return nil
}

// maxSteered keeps the steering program under the kernel's 4096 instructions (2 per slot).
const maxSteered = 2000

// Ancillary BPF loads (linux/filter.h): SKF_AD_OFF + SKF_AD_RXHASH / SKF_AD_RANDOM.
const (
	adRXHash = 0xfffff000 + 32
	adRandom = 0xfffff000 + 56
)

// steering builds: A = rxhash (random when the hash is 0); A %= len(live); return live[A].
// With no index it returns one past the array, which makes the kernel fall back to its own hash.
func steering(live []uint32) []unix.SockFilter {
	if len(live) == 0 {
		return []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}}
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: adRXHash},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0, Jt: 0, Jf: 1},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: adRandom},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(len(live))},
	}
	for i, idx := range live {
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(i), Jt: 0, Jf: 1},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: idx})
	}
	return append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff})
}

func sockaddr(host string, port int) (unix.Sockaddr, int, error) {
	if host == "" && !hasIPv6() {
		// A kernel without IPv6: all addresses means all IPv4 ones, as Node falls back to.
		return &unix.SockaddrInet4{Port: port}, unix.AF_INET, nil
	}
	if host == "" || host == "::" {
		return &unix.SockaddrInet6{Port: port}, unix.AF_INET6, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, 0, fmt.Errorf("listen address %q is not an IP address", host)
	}
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: ip.As16()}, unix.AF_INET6, nil
}

var hasIPv6 = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

func portOf(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

func hostOrAll(host string) string {
	if host == "" {
		return "all addresses"
	}
	return host
}
