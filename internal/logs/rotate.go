package logs

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Rotation says when a log file is rotated and what is kept of the files it leaves. The zero
// Rotation never rotates.
type Rotation struct {
	MaxSize  int64    // rotate once the file holds this many bytes (0: never by size)
	Interval Schedule // rotate at these times (nil: never by time)
	Retain   int      // rotated files kept per log file, the newest (0: none; negative: all)
	Compress bool     // gzip rotated files, off the write path
	// Date names rotated files: <name>__<date><ext>, as pm2-logrotate names them
	// (nil: DefaultRotateDate).
	Date     *DateFormat
	Location *time.Location // the date's time zone (nil: local)
}

// Schedule is a time-based rotation: the first time after t (a cron expression's next run).
type Schedule interface {
	Next(t time.Time) time.Time
}

// DefaultRotateDate is pm2-logrotate's dateFormat.
var DefaultRotateDate = must(ParseDateFormat("YYYY-MM-DD_HH-mm-ss"))

func must(d *DateFormat, err error) *DateFormat {
	if err != nil {
		panic(err)
	}
	return d
}

// On reports whether r rotates at all.
func (r Rotation) On() bool { return r.MaxSize > 0 || r.Interval != nil }

// SetRotation gives f its rotation; the next time-based one is counted from now. Setting a nil
// File does nothing.
func (f *File) SetRotation(r Rotation) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rot = r
	f.due = time.Time{}
	if r.Interval != nil {
		f.due = r.Interval.Next(time.Now())
	}
}

// rotateBySizeLocked rotates f once it holds MaxSize bytes; called with f.mu held after a
// write, so that rotation falls between whole writes (whole lines).
func (f *File) rotateBySizeLocked() {
	if f.rot.MaxSize <= 0 || f.size < f.rot.MaxSize || f.waiting() {
		return
	}
	// The count is ours; a truncation by someone else (tend flush, logrotate's copytruncate)
	// makes it too high: the file's own size decides.
	if f.size = fileSize(f.fd); f.size >= f.rot.MaxSize {
		_ = f.rotateNowLocked(time.Now())
	}
}

// rotateByTimeLocked rotates f when its schedule is due; called with f.mu held before a write,
// so the rotated file holds the lines written before that time, and is named after it.
func (f *File) rotateByTimeLocked() {
	now := time.Now()
	if f.due.IsZero() || now.Before(f.due) || f.waiting() {
		return
	}
	at := f.due
	f.due = f.rot.Interval.Next(now)
	if f.size = fileSize(f.fd); f.size > 0 {
		_ = f.rotateNowLocked(at)
	}
}

// waiting reports whether a rotation failed a short while ago.
func (f *File) waiting() bool { return !f.retry.IsZero() && time.Now().Before(f.retry) }

func (f *File) rotateNowLocked(at time.Time) error {
	if err := f.rotateLocked(at); err != nil {
		// Written on in place; said once, tried again in a while rather than at every write.
		if f.retry.IsZero() && f.owner.OnError != nil {
			f.owner.OnError(err)
		}
		f.retry = time.Now().Add(rotateRetry)
		return err
	}
	f.retry = time.Time{}
	return nil
}

// rotateRetry is how long a file whose rotation failed is written on before the next try.
const rotateRetry = 10 * time.Second

// rotateLocked moves the file aside under a new name and opens a new one at its path. Nothing is
// written meanwhile (f.mu is held), so no line is lost, repeated or cut; a file that cannot be
// moved stays, and is written on.
func (f *File) rotateLocked(at time.Time) error {
	to, err := f.rotatedName(at)
	if err != nil {
		return err
	}
	fd, err := openAppend(f.path, f.owner.noFollow(f.path))
	if err != nil {
		// The file was moved and no new one can be made: move it back rather than write on
		// under its rotated name.
		_ = os.Rename(to, f.path)
		return err
	}
	old := f.fd
	f.fd, f.size = fd, 0
	_ = unix.Close(old)
	f.owner.rotated(f.path, to, f.rot)
	return nil
}

// rotatedName moves the file to <base>__<date><ext> beside it, or with .1, .2… before the
// extension when that name is taken (several rotations in one second), and never over a file: it
// returns the name the file now has. Within one date it goes on from the last number it took,
// rather than trying every name again.
func (f *File) rotatedName(at time.Time) (string, error) {
	path, r := f.path, f.rot
	d := r.Date
	if d == nil {
		d = DefaultRotateDate
	}
	loc := r.Location
	if loc == nil {
		loc = time.Local
	}
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext) + "__" + string(d.Append(nil, at.In(loc)))
	first := 0
	if stem == f.lastStem {
		first = f.lastSeq + 1
	}
	for n := first; n < first+1000; n++ {
		to := stem + ext
		if n > 0 {
			to = stem + "." + strconv.Itoa(n) + ext
		}
		if fileExists(to) || fileExists(to+".gz") {
			continue
		}
		err := unix.Renameat2(unix.AT_FDCWD, path, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE: a link fails on an existing name too.
			if err = os.Link(path, to); err == nil {
				err = os.Remove(path)
			}
		}
		if errors.Is(err, unix.EEXIST) || errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "rotate", Path: path, Err: err}
		}
		f.lastStem, f.lastSeq = stem, n
		return to, nil
	}
	return "", &os.PathError{Op: "rotate", Path: path, Err: os.ErrExist}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// rotated queues what follows a rotation, off the write path: the gzip of the moved file and
// the removal of rotated files past Retain.
func (fs *Files) rotated(path, to string, r Rotation) {
	fs.bgOnce.Do(func() {
		fs.bg = make(chan func(), 1024)
		go func() {
			for job := range fs.bg {
				job()
			}
		}()
	})
	job := func() {
		if r.Compress {
			// Not there: the retain of a later rotation removed it already.
			if err := gzipFile(to); err != nil && !errors.Is(err, os.ErrNotExist) && fs.OnError != nil {
				fs.OnError(err)
			}
		}
		if r.Retain >= 0 {
			prune(path, r.Retain, r.Date)
		}
	}
	select {
	case fs.bg <- job:
	default:
		go job() // a backlog: rather a second worker than a stalled write
	}
}

// gzipFile replaces path by path.gz, written beside it under a temporary name first.
func gzipFile(path string) error {
	in, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The gzip keeps the time the log was last written: the order of rotated files.
		if st, serr := in.Stat(); serr == nil {
			_ = os.Chtimes(tmp, st.ModTime(), st.ModTime())
		}
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(path)
}

// Rotated lists the rotated files of the log file at path, oldest first, named with
// DefaultRotateDate.
func Rotated(path string) []string { return RotatedAs(path, nil) }

// RotatedAs lists the rotated files of the log file at path whose date has the shape date gives
// (nil: DefaultRotateDate), oldest first. Only <name>__<date>[.N]<ext>[.gz] counts: another app
// named "<name>__x", or a file the user keeps beside the logs, is never taken for one (retain
// removes what this lists).
func RotatedAs(path string, date *DateFormat) []string {
	ext := filepath.Ext(path)
	prefix := filepath.Base(strings.TrimSuffix(path, ext)) + "__"
	if date == nil {
		date = DefaultRotateDate
	}
	shape := digitShape(string(date.Append(nil, time.Date(2026, 11, 30, 12, 34, 56, 789e6, time.UTC))))
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	type rf struct {
		name string
		mod  time.Time
		date string // the date in the name
		seq  int    // its .N within one date (0 for none)
	}
	var files []rf
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || strings.HasSuffix(n, ".tmp") || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		f := rf{name: filepath.Join(filepath.Dir(path), n), mod: info.ModTime()}
		rest := strings.TrimSuffix(strings.TrimPrefix(n, prefix), ".gz")
		if !strings.HasSuffix(rest, ext) {
			continue
		}
		f.date = strings.TrimSuffix(rest, ext)
		if i := strings.LastIndexByte(f.date, '.'); i >= 0 {
			if seq, err := strconv.Atoi(f.date[i+1:]); err == nil {
				f.date, f.seq = f.date[:i], seq
			}
		}
		if digitShape(f.date) != shape {
			continue // not a date of this format: not a file tend rotated
		}
		files = append(files, f)
	}
	// By the time each was last written (a custom date format need not sort), then, for files
	// of one clock tick, by the date and the .N in their names.
	slices.SortFunc(files, func(a, b rf) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		if c := strings.Compare(a.date, b.date); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.name
	}
	return out
}

// digitShape is s with every digit as 0: dates of one format have one shape.
func digitShape(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '0'
		}
		return r
	}, s)
}

// prune removes the oldest rotated files of path beyond keep.
func prune(path string, keep int, date *DateFormat) {
	old := RotatedAs(path, date)
	for len(old) > keep {
		os.Remove(old[0])
		old = old[1:]
	}
}

// bgState is Files' background worker for what follows rotations.
type bgState struct {
	bgOnce sync.Once
	bg     chan func()
}

// Drain waits until the work queued by rotations so far (gzip, retain) is done.
func (fs *Files) Drain() {
	if fs.bg == nil {
		return
	}
	done := make(chan struct{})
	fs.bg <- func() { close(done) }
	<-done
}
