package sockets

import (
	"encoding/json"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/keeper"
)

// memStore keeps what a Set puts as a keeper would: JSON and copies of the fds.
type memStore struct {
	t    *testing.T
	recs map[string]keeper.Record
}

func (m *memStore) Put(key string, info any, names []any, fds []int) {
	m.Drop(key)
	rec := keeper.Record{Key: key}
	var err error
	if rec.Info, err = json.Marshal(info); err != nil {
		m.t.Fatal(err)
	}
	for _, n := range names {
		raw, err := json.Marshal(n)
		if err != nil {
			m.t.Fatal(err)
		}
		rec.Names = append(rec.Names, raw)
	}
	for _, fd := range fds {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			m.t.Fatal(err)
		}
		rec.Fds = append(rec.Fds, dup)
	}
	m.recs[key] = rec
}

func (m *memStore) Drop(key string) {
	if rec, ok := m.recs[key]; ok {
		rec.Close()
		delete(m.recs, key)
	}
}

// A spare keeps its place across a daemon's death: the next daemon's mirror of the kernel's
// array must be the array, or its steering program points at the wrong sockets.
func TestKeptGroupKeepsItsSpares(t *testing.T) {
	store := &memStore{t: t, recs: map[string]keeper.Record{}}
	s := NewSet("web", NewRegistry(), store)
	k := Key{Host: "127.0.0.1"}
	for slot := range 3 {
		fd, _, _, err := s.Dup(k, slot, nil)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		s.SetLive(slot, true)
	}
	s.CloseSlot(0) // first in the array: it stays as a spare
	if len(store.recs) != 1 {
		t.Fatalf("want one kept group, got %d", len(store.recs))
	}
	var rec keeper.Record
	for key, r := range store.recs {
		rec = r
		delete(store.recs, key) // the next daemon owns it now
	}
	if len(rec.Fds) != 3 {
		t.Fatalf("the record must keep all 3 sockets of the array, spare included: %d", len(rec.Fds))
	}
	for _, sl := range s.groups[k].group.Slots() {
		unix.Close(sl.fd) // the daemon dies: its fds close, the kernel keeps the group (no shutdown)
	}

	kept, err := ParseKept(rec)
	if err != nil {
		t.Fatal(err)
	}
	next := NewSet("web", NewRegistry(), nil)
	defer next.Close()
	if err := next.Adopt(kept); err != nil {
		t.Fatal(err)
	}
	g := next.groups[k].group
	socks := g.Slots()
	if len(socks) != 3 || !socks[0].spare || socks[1].spare || !socks[1].live || !socks[2].live {
		t.Fatalf("adopted array: want a spare, then slots 1 and 2 live")
	}
	if got := spread(t, g, 100); got[0] != 0 {
		t.Fatalf("the adopted spare must get nothing: %v", got)
	}
	fd, _, _, err := next.Dup(k, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if len(g.Slots()) != 3 || next.groups[k].slots[0] != socks[0] {
		t.Fatal("a new slot must reuse the adopted spare")
	}
}

// A record whose sockets and slots do not match is refused, not indexed past its end.
func TestParseKeptRefusesAMismatch(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := keeper.Record{Key: KeyPrefix + "x", Info: []byte(`{"app":"x"}`),
		Names: []json.RawMessage{[]byte(`{"slot":0}`), []byte(`{"slot":1}`)}, Fds: []int{fd}}
	if _, err := ParseKept(rec); err == nil {
		t.Fatal("2 slots for 1 socket must be refused")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		t.Fatal("a refused record's fds are closed")
	}
}
