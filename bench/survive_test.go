package main

import (
	"os"
	"testing"
)

func TestCountTicks(t *testing.T) {
	for name, c := range map[string]struct {
		log            string
		last           int
		lost, dup, top int
	}{
		"whole":          {"tick 0\ntick 1\ntick 2\n", 2, 0, 0, 2},
		"log behind":     {"tick 0\ntick 1\n", 3, 2, 0, 1}, // the app wrote 2 and 3; no log has them
		"gap":            {"tick 0\ntick 2\ntick 3\n", 3, 1, 0, 3},
		"replayed":       {"tick 0\ntick 1\ntick 1\ntick 2\n", 2, 0, 1, 2},
		"torn":           {"tick 0\ntic\nk 1\ntick 2\n", 2, 1, 0, 2},
		"from the first": {"tick 5\ntick 6\n", 6, 0, 0, 6}, // counted from the log's first line
		"empty":          {"", 4, 5, 0, -1},
		"ahead":          {"tick 0\ntick 1\ntick 2\n", 1, 0, 0, 2}, // lines after last are not judged
	} {
		lost, dup, top := countTicks([]byte(c.log), c.last)
		if lost != c.lost || dup != c.dup || top != c.top {
			t.Errorf("%s: lost %d, dup %d, top %d; want %d, %d, %d", name, lost, dup, top, c.lost, c.dup, c.top)
		}
	}
}

func TestIdentifyAndMemory(t *testing.T) {
	self, ok := identify(os.Getpid())
	if !ok || self.pid != os.Getpid() || self.start == 0 || !self.alive() {
		t.Fatalf("identify(self) = %+v, %v", self, ok)
	}
	if (procID{pid: self.pid, start: self.start + 1}).alive() {
		t.Fatal("another start time is another process")
	}
	if m := readMemRSS(os.Getpid()); m.vm <= 0 || m.anon <= 0 || m.anon > m.vm {
		t.Fatalf("readMemRSS(self) = %+v", m)
	}
}
