package supervisor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tend-sh/tend/internal/config"
)

// Watching: an app with `watch` is restarted (reloaded, in cluster mode) when a file under its
// watched paths changes, as PM2's --watch does. The flag that jlist shows as pm2_env.watch is
// the app's: on when it starts with watch, off when it is stopped, toggled by restart --watch.

// How changes become one restart: the app is replaced once no change came for quietFor (or
// watch_delay, if longer), and at the latest waitAtMost after the first change, so that a
// checkout of a thousand files is one restart and a file written without pause still restarts
// the app. Changes during the replacement are the app's own start (caches, builds) or late ones
// of the same burst: they are dropped, as PM2 drops them.
const (
	quietFor   = 250 * time.Millisecond
	waitAtMost = 5 * time.Second
)

// defaultIgnore is what is not watched when the app sets no ignore_watch: PM2's default (names
// that begin with a dot, node_modules).
var defaultIgnore = []string{"node_modules", ".*"}

// watcher is an app's watching: on or off, and the goroutine that watches while on.
type watcher struct {
	mu   sync.Mutex
	on   bool
	stop chan struct{}
	done chan struct{}
}

// Watching reports whether the app of this instance is watching its files (jlist's watch).
func (i *Info) Watching() bool { return i.watch != nil && i.watch.isOn() }

func (w *watcher) isOn() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.on
}

// setWatching turns the app's watching on (with sp's paths) or off. Turning it on again
// restarts the watch with sp, whose paths may have changed.
func (s *Supervisor) setWatching(a *App, on bool, sp *config.AppSpec) {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop, w.done = nil, nil
	}
	w.on = on && len(sp.Watch) > 0
	if !w.on {
		return
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("watch: cannot watch files; the app runs without", "app", sp.Name, "err", err)
		w.on = false
		return
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go s.watchLoop(a, sp, fw, w.stop, w.done)
}

// watchLoop watches sp's paths until stop, and replaces the app's running processes after a
// burst of changes.
func (s *Supervisor) watchLoop(a *App, sp *config.AppSpec, fw *fsnotify.Watcher, stop, done chan struct{}) {
	defer close(done)
	defer fw.Close()
	m := newWatchMatcher(sp)
	added, failed := 0, 0
	for _, p := range sp.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(sp.Cwd, p)
		}
		n, f := addTree(fw, p, m)
		added, failed = added+n, failed+f
	}
	if failed > 0 {
		s.log.Warn("watch: some folders cannot be watched (too many, or unreadable); changes there restart nothing",
			"app", sp.Name, "watched", added, "not_watched", failed)
	}
	s.log.Info("watch: watching", "app", sp.Name, "paths", strings.Join(sp.Watch, ","), "folders", added)
	var (
		timer      *time.Timer
		fire       <-chan time.Time
		first      time.Time
		changed    string
		replacing  bool
		replaced   = make(chan struct{})
		quiet      = max(quietFor, sp.WatchDelay)
		errorsSaid bool
	)
	for {
		select {
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if m.ignored(ev.Name) {
				continue
			}
			if ev.Op.Has(fsnotify.Create) {
				if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() {
					addTree(fw, ev.Name, m) // a new folder: what is created in it counts too
				}
			}
			if replacing {
				continue
			}
			now := time.Now()
			if fire == nil {
				first = now
			}
			changed = ev.Name
			wait := min(quiet, waitAtMost-now.Sub(first))
			if timer != nil {
				timer.Stop()
			}
			timer = time.NewTimer(max(wait, 0))
			fire = timer.C
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			if !errorsSaid { // an overflow of the kernel's queue, say: said once
				errorsSaid = true
				s.log.Warn("watch: the watcher reported an error; watching goes on", "app", sp.Name, "err", err)
			}
		case <-fire:
			fire, replacing = nil, true
			rel, err := filepath.Rel(sp.Cwd, changed)
			if err != nil || strings.HasPrefix(rel, "..") {
				rel = changed
			}
			go func() {
				s.replaceRunning(a, sp, "watch", rel)
				replaced <- struct{}{}
			}()
		case <-replaced:
			replacing = false
		case <-stop:
			if timer != nil {
				timer.Stop()
			}
			if replacing {
				<-replaced
			}
			return
		}
	}
}

// addTree watches root and every folder under it that m does not ignore; it returns how many
// folders it watches and how many it could not.
func addTree(fw *fsnotify.Watcher, root string, m *watchMatcher) (added, failed int) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				failed++
			}
			return nil
		}
		if p != root && m.ignored(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			if p == root {
				// A file named by watch: its folder is watched, and only it matters there.
				if fw.Add(filepath.Dir(p)) == nil {
					added++
				} else {
					failed++
				}
			}
			return nil
		}
		if err := fw.Add(p); err != nil {
			failed++
			if errors.Is(err, fs.ErrPermission) {
				return filepath.SkipDir
			}
			return nil
		}
		added++
		return nil
	})
	return added, failed
}

// watchMatcher says which paths an app's watch leaves out: ignore_watch's patterns (PM2's
// default when it has none), matched against each part of the path under the app's folder and
// against that whole path; the app's own log files, which would otherwise restart it with every
// line it writes; and, in the folder of a watched file, the other files.
type watchMatcher struct {
	cwd      string
	patterns []string
	logs     map[string]bool
	files    map[string]bool // watch entries that are files
	roots    []string        // watch entries that are folders
}

func newWatchMatcher(sp *config.AppSpec) *watchMatcher {
	m := &watchMatcher{cwd: sp.Cwd, patterns: sp.IgnoreWatch, logs: map[string]bool{}, files: map[string]bool{}}
	if len(m.patterns) == 0 {
		m.patterns = defaultIgnore
	}
	for _, f := range []string{sp.OutFile, sp.ErrFile, sp.LogFile} {
		if f != "" && f != "/dev/null" {
			if !filepath.IsAbs(f) {
				f = filepath.Join(sp.Cwd, f)
			}
			m.logs[filepath.Clean(f)] = true
		}
	}
	for _, p := range sp.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(sp.Cwd, p)
		}
		p = filepath.Clean(p)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			m.files[p] = true
		} else {
			m.roots = append(m.roots, p)
		}
	}
	return m
}

func (m *watchMatcher) ignored(path string) bool {
	path = filepath.Clean(path)
	switch {
	case m.logs[path]:
		return true
	case m.files[path]:
		return false
	case !m.underRoot(path):
		return true // beside a watched file
	}
	rel, err := filepath.Rel(m.cwd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = path
	}
	for _, pat := range m.patterns {
		pat = strings.TrimSuffix(strings.TrimPrefix(pat, "./"), "/")
		if ok, _ := filepath.Match(pat, rel); ok {
			return true
		}
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if ok, _ := filepath.Match(pat, part); ok {
				return true
			}
		}
	}
	return false
}

func (m *watchMatcher) underRoot(path string) bool {
	for _, r := range m.roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// unwatchStopped turns watching off for the apps of ins that no longer run at all.
func (s *Supervisor) unwatchStopped(ins []*Instance) {
	seen := map[*App]bool{}
	for _, in := range ins {
		a := in.app
		if seen[a] {
			continue
		}
		seen[a] = true
		s.mu.Lock()
		running := false
		for _, x := range a.instances {
			running = running || x.Info().Pid > 0
		}
		s.mu.Unlock()
		if !running {
			s.setWatching(a, false, in.Info().Spec)
		}
	}
}
