package sockets

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/keeper"
)

// KeyPrefix starts the keeper key of every group of sockets.
const KeyPrefix = "sock/"

// keptInfo is what a keeper's record of a group says besides its sockets.
type keptInfo struct {
	App     string          `json:"app"`
	Host    string          `json:"host"`
	Port    int             `json:"port"` // as asked: 0 for a port the kernel picked
	N       int             `json:"n"`
	Bound   int             `json:"bound"` // the port it listens on
	Data    json.RawMessage `json:"data,omitempty"`
	Claimed bool            `json:"claimed"`
}

// keptSlot is what a keeper's record says of one socket. The record lists them in the kernel's
// order of the reuseport group, which the steering program's indexes point into.
type keptSlot struct {
	Slot  int  `json:"slot"`
	Live  bool `json:"live"`
	Spare bool `json:"spare,omitempty"` // closed, and holding its place in the array (Group)
}

func (s *Set) storeKey(k Key) string {
	return KeyPrefix + s.owner + "\x00" + k.Host + "\x00" + strconv.Itoa(k.Port) + "\x00" + strconv.Itoa(k.N)
}

// syncLocked gives the store the group of k as it is now: its sockets in the kernel's order,
// which slot each serves and whether it is live.
func (s *Set) syncLocked(k Key) {
	m := s.groups[k]
	if m == nil {
		s.store.Drop(s.storeKey(k))
		return
	}
	slotOf := make(map[*Slot]int, len(m.slots))
	for n, sl := range m.slots {
		slotOf[sl] = n
	}
	var names []any
	var fds []int
	for _, sl := range m.group.Slots() {
		ks := keptSlot{Spare: true}
		if n, ok := slotOf[sl]; ok {
			ks = keptSlot{Slot: n, Live: s.live[n]}
		}
		names = append(names, ks)
		fds = append(fds, sl.fd)
	}
	info := keptInfo{App: s.owner, Host: k.Host, Port: k.Port, N: k.N, Bound: m.group.Port(), Data: m.data, Claimed: m.claimed}
	s.store.Put(s.storeKey(k), info, names, fds)
}

// KeptGroup is one group of an app's sockets as a keeper kept it for the next daemon.
type KeptGroup struct {
	App string
	Key string // the keeper's

	info  keptInfo
	slots []keptSlot
	fds   []int
}

// ParseKept reads a keeper's record of a group (its key starts with KeyPrefix). The group owns
// the record's fds from now on; on error they are closed.
func ParseKept(rec keeper.Record) (KeptGroup, error) {
	g := KeptGroup{Key: rec.Key, fds: rec.Fds}
	fail := func(err error) (KeptGroup, error) {
		g.Close()
		return KeptGroup{}, fmt.Errorf("kept sockets %s: %w", strings.ReplaceAll(rec.Key, "\x00", " "), err)
	}
	if err := json.Unmarshal(rec.Info, &g.info); err != nil {
		return fail(err)
	}
	for _, raw := range rec.Names {
		var ks keptSlot
		if err := json.Unmarshal(raw, &ks); err != nil {
			return fail(err)
		}
		g.slots = append(g.slots, ks)
	}
	if len(g.slots) != len(g.fds) {
		return fail(fmt.Errorf("%d sockets for %d slots", len(g.fds), len(g.slots)))
	}
	g.App = g.info.App
	return g, nil
}

// Close closes the group's sockets (for a group nobody adopts).
func (g KeptGroup) Close() {
	for _, fd := range g.fds {
		_ = unix.Close(fd)
	}
}

// Adopt takes over a group a keeper kept for the previous daemon: its sockets keep their
// places in the kernel's array, their slots and whether they are live, and the port its claim.
func (s *Set) Adopt(g KeptGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := Key{Host: g.info.Host, Port: g.info.Port, N: g.info.N}
	if _, ok := s.groups[k]; ok {
		g.Close()
		return fmt.Errorf("app %q: port %d is open already; the kept sockets are closed", s.owner, g.info.Bound)
	}
	claimed := false
	if g.info.Claimed {
		if err := s.claims.Claim(s.owner, k.Host, g.info.Bound); err != nil {
			g.Close()
			return err
		}
		claimed = true
	}
	grp := NewGroup(k.Host, g.info.Bound)
	m := &member{group: grp, slots: map[int]*Slot{}, data: g.info.Data, claimed: claimed}
	for i, ks := range g.slots {
		sl := &Slot{fd: g.fds[i], live: ks.Live && !ks.Spare, spare: ks.Spare}
		grp.socks = append(grp.socks, sl)
		if ks.Spare {
			continue
		}
		m.slots[ks.Slot] = sl
		if ks.Live {
			s.live[ks.Slot] = true
		}
	}
	s.groups[k] = m
	s.order = append(s.order, k)
	grp.mu.Lock()
	err := grp.attachLocked() // the kernel kept the program; this one says the same
	grp.mu.Unlock()
	return err
}

// Prune closes the slots that keep does not want (those of instances a crashed daemon was
// adding when it died): no connection is steered to a socket nobody will serve.
func (s *Set) Prune(keep func(slot int) bool) {
	s.mu.Lock()
	var drop []int
	for _, m := range s.groups {
		for n := range m.slots {
			if !keep(n) && !slices.Contains(drop, n) {
				drop = append(drop, n)
			}
		}
	}
	s.mu.Unlock()
	for _, n := range drop {
		s.CloseSlot(n)
	}
}
