package sockets

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/keeper"
)

// Key names one listening address of an app as its instances ask for it. Port 0 asks for a
// port picked by the kernel; every instance gets the same one (as in Node's cluster), and N
// counts such listens so that two listen(0) calls of one app get two ports.
type Key struct {
	Host string
	Port int
	N    int
}

// Claims checks, before a new address is bound, that no other user of the daemon has it. It
// returns a one-line error naming the holder.
type Claims interface {
	Claim(owner string, host string, port int) error
	Release(owner string, host string, port int)
}

// Set is every listening socket of one app: a group per address, a socket per slot (instance
// index). It is the one holder of those sockets (DESIGN rule 2): instances get dups of them.
type Set struct {
	owner  string
	claims Claims
	store  keeper.Store // keeps a copy of every socket, in the kernel's order, past the daemon

	mu     sync.Mutex
	groups map[Key]*member
	order  []Key // creation order, for LISTEN_FDS numbering
	live   map[int]bool
	users  int // processes that hold or may be handed dups of these sockets
}

// Acquire counts one more process that may take sockets of the set: while any is counted, the
// set is not closed for being idle.
func (s *Set) Acquire() {
	s.mu.Lock()
	s.users++
	s.mu.Unlock()
}

// Release undoes one Acquire, once that process is gone.
func (s *Set) Release() {
	s.mu.Lock()
	s.users--
	s.mu.Unlock()
}

// CloseIfUnused closes every socket unless a process is still counted, and says whether it did.
func (s *Set) CloseIfUnused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users > 0 {
		return false
	}
	s.closeLocked()
	return true
}

type member struct {
	group   *Group
	slots   map[int]*Slot
	data    json.RawMessage // the first instance's server data, echoed to all (TLS ticket keys)
	claimed bool            // the port is in the daemon's registry under this app
}

// NewSet returns an empty set for the app named owner, whose sockets store keeps (nil: nobody).
func NewSet(owner string, claims Claims, store keeper.Store) *Set {
	if store == nil {
		store = keeper.Nop{}
	}
	return &Set{owner: owner, claims: claims, store: store, groups: map[Key]*member{}, live: map[int]bool{}}
}

// Dup returns a close-on-exec dup of slot's socket for k, creating the group (after the port
// is probed and claimed) and the slot's socket when they do not exist yet, with the port the
// group listens on and the server data to echo. The caller closes the dup.
func (s *Set) Dup(k Key, slot int, data json.RawMessage) (fd, port int, echo json.RawMessage, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.memberLocked(k)
	if err != nil {
		return -1, 0, nil, err
	}
	sl, ok := m.slots[slot]
	if !ok {
		if sl, err = m.group.Add(); err != nil {
			return -1, 0, nil, err
		}
		if !m.claimed {
			// The kernel picked the port with this first socket; claim it now.
			if err := s.claims.Claim(s.owner, k.Host, m.group.Port()); err != nil {
				m.group.Close(sl)
				return -1, 0, nil, err
			}
			m.claimed = true
		}
		m.slots[slot] = sl
		if s.live[slot] {
			_ = m.group.SetLive(sl, true)
		}
	}
	if m.data == nil && len(data) > 0 && string(data) != "null" {
		m.data = data
		ok = false
	}
	if !ok {
		s.syncLocked(k)
	}
	fd, err = unix.FcntlInt(uintptr(sl.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, 0, nil, fmt.Errorf("dup socket of port %d: %w", m.group.Port(), err)
	}
	return fd, m.group.Port(), m.data, nil
}

// MaxPorts is how many listening sockets (ports, and listen(0) calls) one app may ask tend
// for: an app that asks for a new one in a loop would otherwise take the daemon's fds.
const MaxPorts = 64

// ErrTooManyPorts is an app's ask past MaxPorts.
var ErrTooManyPorts = errors.New("this app asked for more than 64 listening sockets (MaxPorts); tend gives it no more: listen on fewer ports, or reuse a server")

func (s *Set) memberLocked(k Key) (*member, error) {
	if m, ok := s.groups[k]; ok {
		return m, nil
	}
	if k.Port < 0 || k.Port > 65535 {
		return nil, fmt.Errorf("port %d is out of range", k.Port)
	}
	if len(s.groups) >= MaxPorts {
		return nil, ErrTooManyPorts
	}
	m := &member{group: NewGroup(k.Host, k.Port), slots: map[int]*Slot{}}
	if k.Port != 0 {
		for other, om := range s.groups {
			if other.Port == k.Port && overlap(other.Host, k.Host) {
				return nil, fmt.Errorf("port %d: this app listens on it already on %s; listen on one address per port", k.Port, hostOrAll(om.group.host))
			}
		}
		if err := s.claims.Claim(s.owner, k.Host, k.Port); err != nil {
			return nil, err
		}
		if err := Probe(k.Host, k.Port); err != nil {
			s.claims.Release(s.owner, k.Host, k.Port)
			return nil, err
		}
		m.claimed = true
	}
	s.groups[k] = m
	s.order = append(s.order, k)
	return m, nil
}

// Open creates the sockets of slot for each of the declared keys up front (for runtimes that
// get them as inherited fds) and returns dups in the keys' order.
func (s *Set) Open(keys []Key, slot int) ([]int, error) {
	var fds []int
	for _, k := range keys {
		fd, _, _, err := s.Dup(k, slot, nil)
		if err != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// SetLive includes or excludes slot in every group's steering: a slot whose instance is not
// serving gives its share of new connections to the others.
func (s *Set) SetLive(slot int, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[slot] == live {
		return
	}
	if live {
		s.live[slot] = true
	} else {
		delete(s.live, slot)
	}
	for k, m := range s.groups {
		if sl, ok := m.slots[slot]; ok {
			_ = m.group.SetLive(sl, live)
			s.syncLocked(k)
		}
	}
}

// Queued is how many connections wait in the accept queues of the slot's sockets.
func (s *Set) Queued(slot int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.groups {
		if sl, ok := m.slots[slot]; ok {
			n += sl.Queued()
		}
	}
	return n
}

// CloseSlot closes the slot's sockets (scale down): it is excluded first, so no new connection
// is steered to a socket about to close.
func (s *Set) CloseSlot(slot int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, slot)
	for k, m := range s.groups {
		if sl, ok := m.slots[slot]; ok {
			_ = m.group.SetLive(sl, false)
			_ = m.group.Close(sl)
			delete(m.slots, slot)
		}
		if len(m.slots) == 0 {
			s.dropLocked(k)
		} else {
			s.syncLocked(k)
		}
	}
}

func (s *Set) dropLocked(k Key) {
	m := s.groups[k]
	for _, sl := range m.slots {
		_ = m.group.Close(sl)
	}
	if m.claimed {
		s.claims.Release(s.owner, k.Host, m.group.Port())
	}
	delete(s.groups, k)
	if i := slices.Index(s.order, k); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
	s.store.Drop(s.storeKey(k))
}

// Close closes every socket: a stopped app holds no port, so its clients are refused rather
// than left waiting.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *Set) closeLocked() {
	for _, k := range slices.Clone(s.order) {
		s.dropLocked(k)
	}
	s.groups = map[Key]*member{}
	s.order = nil
	s.live = map[int]bool{}
}

// Ports lists the ports the set listens on, for display.
func (s *Set) Ports() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, k := range s.order {
		if p := s.groups[k].group.Port(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Registry is the daemon-wide table of claimed addresses, so that two apps asking for one
// port get a clear error instead of sharing it (a reuseport bind would succeed).
type Registry struct {
	mu     sync.Mutex
	claims map[int][]claim
}

type claim struct{ owner, host string }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{claims: map[int][]claim{}} }

// Claim records that owner listens on host:port, unless another owner holds an overlapping one.
func (r *Registry) Claim(owner, host string, port int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.claims[port] {
		if c.owner != owner && overlap(c.host, host) {
			return inUse{fmt.Sprintf("port %d is already used by app %q; give this app another port or stop %q", port, c.owner, c.owner)}
		}
	}
	r.claims[port] = append(r.claims[port], claim{owner, host})
	return nil
}

// Release forgets one claim of owner on host:port.
func (r *Registry) Release(owner, host string, port int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.claims[port]
	if i := slices.Index(cs, claim{owner, host}); i >= 0 {
		cs = slices.Delete(cs, i, i+1)
	}
	if len(cs) == 0 {
		delete(r.claims, port)
	} else {
		r.claims[port] = cs
	}
}

func overlap(a, b string) bool {
	wild := func(h string) bool { return h == "" || h == "::" || h == "0.0.0.0" }
	return a == b || wild(a) || wild(b)
}
