package logs

import (
	"bytes"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Whatever an app writes to its pipe reaches the file byte for byte, in order, and the file
// ends at a line's end: a last line without its newline gets one. (Lines are shorter than
// MaxLine here; cutting long lines is tested by TestPumpLongLine.)
func FuzzPumpFraming(f *testing.F) {
	for _, s := range []string{"a\nb\n", "no newline at the end", "\n\n\n", "0123456789abcdefghijklmnopqrstuvwxyz long line\nshort\n", "\r\n\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Skip(err)
		}
		path, file := openOut(t)
		go func() {
			for b := data; len(b) > 0; {
				n, err := unix.Write(p[1], b)
				if err != nil {
					break
				}
				b = b[n:]
			}
			unix.Close(p[1])
		}()
		if err := Pump(p[0], StreamConfig{Files: []*File{file}, MaxLine: 4 << 20}); err != nil {
			t.Fatal(err)
		}
		unix.Close(p[0])
		file.Close()
		got, _ := os.ReadFile(path)
		want := data
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(bytes.Clone(want), '\n')
		}
		if !bytes.Equal(got, want) {
			t.Errorf("in %q, out %q", data, got)
		}
	})
}

// A date format a user typed: it parses or errs, and a parsed one formats without panicking.
func FuzzDateFormat(f *testing.F) {
	for _, s := range []string{"YYYY-MM-DD HH:mm:ss Z", "[literal] x X SSS", "Do MMMM", "[unclosed", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, layout string) {
		if d, err := ParseDateFormat(layout); err == nil && d != nil {
			_ = d.Append(nil, time.Date(2026, 11, 30, 7, 5, 9, 123456789, time.UTC))
		}
	})
}
