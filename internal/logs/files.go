package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Files hands out shared, reference-counted append-only log files keyed by
// cleaned absolute path, so that several streams (stdout and stderr into one
// --log file, or several instances with --merge-logs) write to one *File and
// their lines never interleave mid-line.
type Files struct {
	// mu guards files and every File's refs; it is taken before a File's mu,
	// never after.
	mu    sync.Mutex
	files map[string]*File
	// OnError, if set, is told what went wrong after a rotation (a gzip that failed).
	OnError func(error)
	// NoFollowUnder, if set, is a folder (tend's home) whose files are opened never through a
	// symbolic link; a path the user chose elsewhere may be one.
	NoFollowUnder string
	bgState
}

// NewFiles returns an empty set of files.
func NewFiles() *Files {
	return &Files{files: make(map[string]*File)}
}

// File is one open log file, shared by every stream that writes to its path.
// A nil *File discards what is written to it.
type File struct {
	owner *Files
	path  string
	refs  int // guarded by owner.mu

	mu    sync.Mutex
	fd    int       // -1 once the last reference is gone
	size  int64     // bytes in the file, as far as our writes tell
	rot   Rotation  // when to rotate it
	due   time.Time // the next time-based rotation (zero: none)
	retry time.Time // after a rotation failed: no other try before then
	// The last rotated name's date part and its .N, so that rotations within one second do not
	// try every taken name again.
	lastStem string
	lastSeq  int
}

// disabled reports whether path is one of PM2's ways of saying "no file".
func disabled(path string) bool {
	return path == "" || path == "NULL" || path == os.DevNull
}

// Open returns the shared file for path, creating parent directories (0755)
// and the file (0640) if needed. The path "", "/dev/null" or "NULL" returns
// (nil, nil): a nil *File discards. Each successful Open must be paired with
// one Close. The file does not rotate (see OpenRotating).
func (fs *Files) Open(path string) (*File, error) {
	return fs.OpenRotating(path, Rotation{})
}

// OpenRotating is Open with the rotation the file is to have from now on (the last opener's
// rotation is the shared file's).
func (fs *Files) OpenRotating(path string, rot Rotation) (*File, error) {
	f, err := fs.open(path)
	if err == nil && f != nil {
		f.SetRotation(rot)
	}
	return f, err
}

func (fs *Files) open(path string) (*File, error) {
	if disabled(path) {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if disabled(abs) {
		return nil, nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.files[abs]; f != nil {
		f.refs++
		return f, nil
	}
	fd, err := openAppend(abs, fs.noFollow(abs))
	if err != nil {
		return nil, err
	}
	cutTornTail(fd, abs)
	f := &File{owner: fs, path: abs, refs: 1, fd: fd, size: fileSize(fd)}
	fs.files[abs] = f
	return f, nil
}

// cutTornTail truncates a log file that does not end with a newline back to its last one,
// before anyone writes to it again. Only a writer killed in the middle of a write(2) leaves that
// (a daemon killed by SIGKILL): a line's head with no end. The pump that wrote it had not yet
// consumed those lines from the app's pipe, so the next daemon writes them again, whole; without
// the cut, that head would stay glued to the next line.
func cutTornTail(fd int, path string) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size == 0 {
		return
	}
	r, err := os.Open(path) // fd is write-only
	if err != nil {
		return
	}
	defer r.Close()
	buf := make([]byte, min(st.Size, DefaultMaxLine+int64(len(splitMarker))+1))
	off := st.Size - int64(len(buf))
	if n, err := r.ReadAt(buf, off); err != nil || n != len(buf) {
		return
	}
	if buf[len(buf)-1] == '\n' {
		return
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		_ = unix.Ftruncate(fd, off+int64(i)+1)
	} else if off == 0 {
		_ = unix.Ftruncate(fd, 0) // the whole file is that head
	}
}

// Retain adds a reference to f and returns it: a log reader holds its own, so that the file
// outlives the instance's handle until the reader has written the last bytes of its pipe.
// Retaining a nil File returns nil.
func (f *File) Retain() *File {
	if f == nil {
		return nil
	}
	f.owner.mu.Lock()
	f.refs++
	f.owner.mu.Unlock()
	return f
}

// Reopen closes and reopens every open file, so that writes go to a file
// created at the same path after an external logrotate moved the old one
// away. A file that cannot be reopened keeps its old descriptor: its lines
// still land somewhere rather than being lost.
func (fs *Files) Reopen() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var errs []error
	for _, f := range fs.files {
		if err := f.reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *File) reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return nil
	}
	fd, err := openAppend(f.path, f.owner.noFollow(f.path))
	if err != nil {
		return err
	}
	old := f.fd
	f.fd, f.size = fd, fileSize(fd)
	if err := unix.Close(old); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// fileSize is the size of the open file fd, or 0.
func fileSize(fd int) int64 {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0
	}
	return st.Size
}

// noFollow reports whether path lies in NoFollowUnder.
func (fs *Files) noFollow(path string) bool {
	d := fs.NoFollowUnder
	return d != "" && strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/")
}

func openAppend(path string, noFollow bool) (int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return -1, err
	}
	for {
		// O_NONBLOCK: opening a FIFO that nobody reads would otherwise block, and with it every
		// start that takes the files lock; this way it fails at once (ENXIO).
		flags := unix.O_APPEND | unix.O_CREAT | unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NONBLOCK
		if noFollow {
			flags |= unix.O_NOFOLLOW
		}
		fd, err := unix.Open(path, flags, 0o640)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENXIO {
			return -1, fmt.Errorf("log path %s is a FIFO that nobody reads; start its reader first or pick a file", path)
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return -1, &os.PathError{Op: "fcntl", Path: path, Err: err}
		}
		return fd, nil
	}
}

// Path returns the cleaned absolute path of f, or "" for a nil File.
func (f *File) Path() string {
	if f == nil {
		return ""
	}
	return f.path
}

// Write appends p, which must hold whole lines only. The mutex is held for the
// whole of p, including the rare retry after a short write, so that lines of
// other streams sharing f never land inside p. Writing to a nil File does
// nothing.
func (f *File) Write(p []byte) error {
	if f == nil || len(p) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return &os.PathError{Op: "write", Path: f.path, Err: os.ErrClosed}
	}
	if f.rot.Interval != nil {
		f.rotateByTimeLocked()
	}
	// A write that would take the file past MaxSize is cut after the last whole line that fits,
	// and the rest goes to the next file: a rotated file holds at most MaxSize bytes (or one
	// longer line).
	if f.rot.MaxSize > 0 && f.size+int64(len(p)) > f.rot.MaxSize {
		// The count is ours; a truncation by someone else (tend flush, logrotate's
		// copytruncate) makes it too high: the file's own size decides.
		f.size = fileSize(f.fd)
	}
	for f.rot.MaxSize > 0 && f.size+int64(len(p)) > f.rot.MaxSize && !f.waiting() {
		cut := 0
		if room := f.rot.MaxSize - f.size; room > 0 {
			cut = bytes.LastIndexByte(p[:min(room, int64(len(p)))], '\n') + 1
		}
		if cut == 0 && f.size == 0 {
			break // one line longer than MaxSize: it goes whole into a file of its own
		}
		if err := f.writeLocked(p[:cut]); err != nil {
			return dropped(err, p)
		}
		p = p[cut:]
		if f.rotateNowLocked(time.Now()) != nil {
			break // the rotation failed: the rest is written on in place
		}
	}
	if err := f.writeLocked(p); err != nil {
		return dropped(err, p)
	}
	f.rotateBySizeLocked()
	return nil
}

// DropError is a write that failed (a full disk): Lines whole lines were not written, and the
// file holds no part of one.
type DropError struct {
	Lines int
	Err   error
}

func (e *DropError) Error() string { return e.Err.Error() }
func (e *DropError) Unwrap() error { return e.Err }

// dropped is err for lines of p that did not reach the file: writeLocked says how many of p did.
func dropped(err error, p []byte) error {
	var w *writeFailure
	if errors.As(err, &w) {
		return &DropError{Lines: bytes.Count(p[w.kept:], []byte{'\n'}), Err: w.err}
	}
	return &DropError{Lines: bytes.Count(p, []byte{'\n'}), Err: err}
}

// writeFailure is writeLocked's error: the first kept bytes of p are in the file, whole lines.
type writeFailure struct {
	kept int
	err  error
}

func (w *writeFailure) Error() string { return w.err.Error() }

// writeLocked writes all of p at the end of the file; f.mu is held. A write that fails part way
// (the disk filled up) is undone back to the end of the last whole line it wrote, so the file
// never holds part of a line: the next line that fits starts on a line of its own.
func (f *File) writeLocked(p []byte) error {
	done := 0
	for done < len(p) {
		n, err := unix.Write(f.fd, p[done:])
		if err == unix.EINTR {
			continue
		}
		if err == nil && n <= 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			kept := bytes.LastIndexByte(p[:done], '\n') + 1
			if torn := done - kept; torn > 0 {
				end := fileSize(f.fd)
				if terr := unix.Ftruncate(f.fd, end-int64(torn)); terr == nil {
					f.size -= int64(torn)
				} else {
					// The part of a line stays: at least the next write starts a new line.
					_, _ = unix.Write(f.fd, []byte{'\n'})
				}
			}
			return &writeFailure{kept: kept, err: &os.PathError{Op: "write", Path: f.path, Err: err}}
		}
		f.size += int64(n)
		done += n
	}
	return nil
}

// Close drops one reference; the descriptor is closed with the last one.
// Closing a nil File does nothing.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	fs := f.owner
	fs.mu.Lock()
	if f.refs <= 0 {
		fs.mu.Unlock()
		return &os.PathError{Op: "close", Path: f.path, Err: os.ErrClosed}
	}
	f.refs--
	last := f.refs == 0
	if last && fs.files[f.path] == f {
		delete(fs.files, f.path)
	}
	fs.mu.Unlock()
	if !last {
		return nil
	}
	f.mu.Lock()
	fd := f.fd
	f.fd = -1
	f.mu.Unlock()
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
