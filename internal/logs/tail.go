package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// tailBlock is how much Tail reads at a time, walking back from the end.
const tailBlock = 64 << 10

// Tail returns the last n lines of the file at path, without their '\n', and
// the size it read up to, the offset from which Follow should continue. It
// reads backwards from the end in blocks, so a 1 GB file costs no more than
// the lines asked for. A last line without '\n' counts as a line. A missing
// file is (nil, 0, nil).
func Tail(path string, n int) (lines []string, end int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if n <= 0 || size == 0 {
		return nil, size, nil
	}

	// Blocks are gathered last first; the search stops once they hold n
	// newlines that start lines, since the n-th of those from the end
	// precedes the first line wanted.
	var blocks [][]byte
	pos, newlines := size, 0
	for pos > 0 && newlines < n {
		start := max(pos-tailBlock, 0)
		b := make([]byte, pos-start)
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		counted := b
		if pos == size && b[len(b)-1] == '\n' {
			// The file's final '\n' ends the last line; it starts none.
			counted = b[:len(b)-1]
		}
		newlines += bytes.Count(counted, []byte{'\n'})
		blocks = append(blocks, b)
		pos = start
	}
	slices.Reverse(blocks)
	data := bytes.Join(blocks, nil)
	data = bytes.TrimSuffix(data, []byte{'\n'})

	from := len(data)
	for range n {
		i := bytes.LastIndexByte(data[:from], '\n')
		if i < 0 {
			from = -1
			break
		}
		from = i
	}
	return strings.Split(string(data[from+1:]), "\n"), size, nil
}

// followPending bounds the bytes Follow holds for a line whose '\n' has not
// arrived; past it, the bytes are handed over as a line. Pump never writes
// lines that long, so this only guards against other writers.
const followPending = 1 << 20

// Follow polls path every interval (200ms if interval ≤ 0) from offset and
// calls fn with each complete new line, without its '\n', until ctx is done.
// The slice is only valid during the call. If the file shrinks (truncated by
// `tend flush`) it starts again from 0; if it does not exist yet it waits for
// it; if it is replaced by another file (logrotate moving it away), it reads
// what is left of the old one and then the new one from 0. Follow returns nil
// when ctx is done and an error only when the file cannot be read.
func Follow(ctx context.Context, path string, offset int64, interval time.Duration, fn func(line []byte)) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	fl := &follower{path: path, offset: offset, fn: fn}
	defer fl.close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := fl.poll(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type follower struct {
	path    string
	offset  int64 // of the next byte to read from file
	fn      func([]byte)
	file    *os.File
	info    os.FileInfo // of file, to notice it being replaced
	pending []byte      // a line read without its '\n' yet
	buf     []byte
}

func (fl *follower) close() {
	if fl.file != nil {
		fl.file.Close()
		fl.file = nil
	}
}

func (fl *follower) poll() error {
	if fl.file != nil {
		st, err := os.Stat(fl.path)
		switch {
		case err == nil && !os.SameFile(st, fl.info):
			// Finish the old file first: its last lines were written
			// before the new one existed.
			if err := fl.read(); err != nil {
				return err
			}
			if len(fl.pending) > 0 {
				fl.fn(fl.pending)
			}
			fl.close()
			fl.offset, fl.pending = 0, fl.pending[:0]
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if fl.file == nil {
		f, err := os.Open(fl.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		fl.file, fl.info = f, st
	}
	return fl.read()
}

// read delivers the lines between offset and the current end of file.
func (fl *follower) read() error {
	st, err := fl.file.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size < fl.offset {
		fl.offset, fl.pending = 0, fl.pending[:0]
	}
	if fl.buf == nil {
		fl.buf = make([]byte, 64<<10)
	}
	for fl.offset < size {
		n, err := fl.file.ReadAt(fl.buf[:min(int64(len(fl.buf)), size-fl.offset)], fl.offset)
		fl.offset += int64(n)
		fl.deliver(fl.buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (fl *follower) deliver(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			fl.pending = append(fl.pending, b...)
			if len(fl.pending) >= followPending {
				fl.fn(fl.pending)
				fl.pending = fl.pending[:0]
			}
			return
		}
		if len(fl.pending) > 0 {
			fl.pending = append(fl.pending, b[:i]...)
			fl.fn(fl.pending)
			fl.pending = fl.pending[:0]
		} else {
			fl.fn(b[:i])
		}
		b = b[i+1:]
	}
}
