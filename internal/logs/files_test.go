package logs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFilesOpenShares(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	fs := NewFiles()
	path := filepath.Join(dir, "a", "b", "app-out.log")
	f1, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := fs.Open("a/./c/../b/app-out.log")
	if err != nil {
		t.Fatal(err)
	}
	if f1 != f2 {
		t.Fatal("one path opened twice gave two files")
	}
	if f1.Path() != path {
		t.Errorf("Path() = %q, want %q", f1.Path(), path)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&0o600 != 0o600 || perm&0o137 != 0 {
		t.Errorf("file mode %v, want 0640 less the umask", perm)
	}
	fl, err := unix.FcntlInt(uintptr(f1.fd), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("log fd is not close-on-exec (flags %#x, %v)", fl, err)
	}

	if err := f1.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := f1.Close(); err != nil {
		t.Fatal(err)
	}
	// One reference is left: writing still works.
	if err := f2.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f2.Write([]byte("three\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after the last Close: %v, want ErrClosed", err)
	}
	if err := f2.Close(); err == nil {
		t.Error("a Close too many succeeded")
	}

	// A new Open appends to what is there.
	f3, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if f3 == f1 {
		t.Fatal("a closed file was handed out again")
	}
	if err := f3.Write([]byte("four\n")); err != nil {
		t.Fatal(err)
	}
	f3.Close()
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\nfour\n" {
		t.Errorf("file holds %q", b)
	}
}

func TestFilesReopen(t *testing.T) {
	dir := t.TempDir()
	fs := NewFiles()
	path := filepath.Join(dir, "app-out.log")
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("before\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("moved\n"))
	if err := fs.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("after\n"))
	if b, _ := os.ReadFile(path + ".1"); string(b) != "before\nmoved\n" {
		t.Errorf("rotated file holds %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "after\n" {
		t.Errorf("new file holds %q", b)
	}
}

func TestFilesOpenError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fs := NewFiles()
	if f, err := fs.Open(filepath.Join(blocker, "x.log")); err == nil || f != nil {
		t.Fatalf("Open under a regular file = %v, %v; want an error", f, err)
	}
}

// A log file left with a line's head and no end (its writer killed in the middle of a write) is
// cut back to its last whole line when it is opened again: the writer's successor writes that
// line whole.
func TestOpenCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ before, after string }{
		{"a\nb\nhea", "a\nb\n"},
		{"a\nb\n", "a\nb\n"},
		{"head only", ""},
		{"", ""},
	} {
		path := filepath.Join(dir, "out.log")
		if err := os.WriteFile(path, []byte(tt.before), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := NewFiles()
		f, err := fs.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, _ := os.ReadFile(path); string(got) != tt.after {
			t.Errorf("%q opened: %q, want %q", tt.before, got, tt.after)
		}
	}
}

// A link planted in tend's home is not followed: the file it points to is not written.
func TestNoFollowUnderHome(t *testing.T) {
	home := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("keep\n"), 0o600)
	os.Symlink(target, filepath.Join(home, "app-out.log"))
	fs := NewFiles()
	fs.NoFollowUnder = home
	if f, err := fs.Open(filepath.Join(home, "app-out.log")); err == nil {
		f.Write([]byte("planted\n"))
		f.Close()
		t.Fatal("a link in the home was followed")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	// Elsewhere, a path the user chose may be a link.
	fs.NoFollowUnder = filepath.Join(home, "other")
	f, err := fs.Open(filepath.Join(home, "app-out.log"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
