package worker

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// A message over the bound is dropped whole, and the messages after it still arrive: one long
// message must not leave the app deaf.
func TestLineReaderDropsLongMessages(t *testing.T) {
	long := strings.Repeat("x", 300) // spans several reads of the 16-byte buffer below
	in := `"a"` + "\n" + long + "\n" + `"b"` + "\n\n" + `{"c":1}` + "\n" + `"cut`
	l := lineReader{r: bufio.NewReaderSize(strings.NewReader(in), 16), max: 100}
	var got []string
	for {
		line, err := l.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	want := []string{`"a"`, `"b"`, ``, `{"c":1}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	if l.dropped != 1 {
		t.Errorf("dropped %d, want 1", l.dropped)
	}
	// A message of exactly the bound is kept.
	l = lineReader{r: bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", 100)+"\n"), 16), max: 100}
	if line, err := l.next(); err != nil || len(line) != 100 {
		t.Errorf("a message of the bound: %d bytes, %v", len(line), err)
	}
}
