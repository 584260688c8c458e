package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/config"
	"github.com/tend-sh/tend/internal/proc"
)

// runAs is the user an app's processes run as (uid/gid), when it is not the daemon's.
type runAs struct {
	cred       proc.Cred
	name, home string
}

// userOf resolves the app's uid and gid: nil when it runs as the daemon's own user. Switching
// users needs a daemon that runs as root; any other daemon refuses, in one line.
func userOf(sp *config.AppSpec) (*runAs, error) {
	if sp.User == "" && sp.Group == "" {
		return nil, nil
	}
	u, err := lookupUser(sp.User)
	if err != nil {
		return nil, fmt.Errorf("%w: app %q: uid %q: %v", config.ErrInvalid, sp.Name, sp.User, err)
	}
	r := &runAs{name: u.Username, home: u.HomeDir}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if sp.Group != "" {
		g, err := lookupGroup(sp.Group)
		if err != nil {
			return nil, fmt.Errorf("%w: app %q: gid %q: %v", config.ErrInvalid, sp.Name, sp.Group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	r.cred = proc.Cred{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(n) != r.cred.Gid {
				r.cred.Groups = append(r.cred.Groups, uint32(n))
			}
		}
	}
	euid, egid := os.Geteuid(), os.Getegid()
	if euid != 0 {
		if int(uid) == euid && int(gid) == egid {
			return nil, nil // the daemon's own user: nothing to switch
		}
		me := strconv.Itoa(euid)
		if cur, err := user.Current(); err == nil {
			me = cur.Username
		}
		return nil, fmt.Errorf("%w: app %q: uid/gid: this daemon runs as %s and cannot run an app as another user; start the daemon as root (sudo tend kill, then sudo tend start …) or leave uid out",
			config.ErrInvalid, sp.Name, me)
	}
	return r, nil
}

// lookupUser finds a user by name or number; a number with no entry in the user database is
// that uid with no name, in group 0's place its own number, at home in /.
func lookupUser(name string) (*user.User, error) {
	if name == "" {
		return user.Current()
	}
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		return &user.User{Uid: name, Gid: name, Username: name, HomeDir: "/"}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no such user on this machine")
	}
	return u, nil
}

func lookupGroup(name string) (*user.Group, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if g, err := user.LookupGroupId(name); err == nil {
			return g, nil
		}
		return &user.Group{Gid: name, Name: name}, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, fmt.Errorf("no such group on this machine")
	}
	return g, nil
}

// checkAccess says, in one line, what of the app the user cannot reach: its folder (and each
// folder above it), or its script.
func (r *runAs) checkAccess(sp *config.AppSpec) error {
	if r == nil || r.cred.Uid == 0 {
		return nil
	}
	for dir := sp.Cwd; ; dir = filepath.Dir(dir) {
		if !r.may(dir, 1) {
			return fmt.Errorf("%w: app %q: user %s cannot enter %s (%s): let it in (chmod o+x), or give the app a folder it can reach",
				config.ErrInvalid, sp.Name, r.name, dir, modeOf(dir))
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	if sp.ScriptIsCommand {
		return nil
	}
	want, what := uint32(4), "read" // an interpreter reads the script
	if sp.Interpreter == "" {
		want, what = 1, "run" // a binary is executed
	}
	if !r.may(sp.Script, want) {
		return fmt.Errorf("%w: app %q: user %s cannot %s %s (%s): make it readable by that user, or leave uid out",
			config.ErrInvalid, sp.Name, r.name, what, sp.Script, modeOf(sp.Script))
	}
	for dir := filepath.Dir(sp.Script); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if !r.may(dir, 1) {
			return fmt.Errorf("%w: app %q: user %s cannot reach %s: it cannot enter %s (%s)",
				config.ErrInvalid, sp.Name, r.name, sp.Script, dir, modeOf(dir))
		}
	}
	return nil
}

// may reports whether the user's uid and groups grant bits (4 read, 2 write, 1 execute/search)
// on path, by its mode as the kernel checks it (ACLs aside).
func (r *runAs) may(path string, bits uint32) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return false
	}
	mode := st.Mode
	switch {
	case st.Uid == r.cred.Uid:
		return (mode>>6)&bits == bits
	case st.Gid == r.cred.Gid || slices.Contains(r.cred.Groups, st.Gid):
		return (mode>>3)&bits == bits
	}
	return mode&bits == bits
}

// modeOf is a path's permissions and owner, for a message.
func modeOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	var owner string
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = strconv.Itoa(int(s.Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
	}
	return st.Mode().String() + " " + owner
}
