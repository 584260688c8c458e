package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The end-to-end tests run real processes, all of them this test binary in another role:
//
//	test process ─ keeper (Run or Resume; a subreaper) ─ daemon (a scripted fake) ─ child
//
// The keeper cannot run in the test process: Run installs signal handlers, makes the process a
// subreaper and reaps every child it has. TestMain picks the role from envRole before any test
// runs. The processes tell the test what they saw through files in the keeper's home.
const (
	envRole   = "TEND_KEEPER_TEST_ROLE"   // keeper, daemon or child
	envHome   = "TEND_KEEPER_TEST_HOME"   // the keeper's home, where the files go
	envScript = "TEND_KEEPER_TEST_SCRIPT" // the daemons' steps (see daemonMain)
	envPipe   = "TEND_KEEPER_TEST_PIPE"   // a path that opens the test's pipe (/proc/<pid>/fd/<n>)
	envPpid   = "TEND_KEEPER_TEST_PPID"   // a child's parent, the daemon that started it
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "keeper":
		os.Exit(keeperMain())
	case "daemon":
		os.Exit(daemonMain())
	case "child":
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// keeperMain is the keeper, set up as the CLI sets it up (internal/cli/daemon.go keeperRun): the
// daemon is this binary again; Ready marks that the keeper has seen its daemon serve.
func keeperMain() int {
	// A test process that dies without its cleanups (killed, or its output closed) must not
	// leave a keeper restarting daemons: once re-parented, the keeper kills its process group.
	go func(ppid int) {
		for os.Getppid() == ppid {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(0, syscall.SIGKILL)
	}(os.Getppid())
	home := os.Getenv(envHome)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keeper-error:", err)
		return 1
	}
	o := Options{
		Home: home, Version: "t", Argv: []string{exe},
		Env:    append(slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, envRole+"=") }), envRole+"=daemon"),
		Stdout: os.Stdout, Stderr: os.Stderr,
		Log:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Ready: func() error { return os.WriteFile(filepath.Join(home, "keeper-served"), nil, 0o600) },
	}
	if _, ok := os.LookupEnv(EnvResume); ok { // first: a keeper that re-executed itself
		err = Resume(o)
	} else {
		err = Run(o)
	}
	var de DaemonExit
	switch {
	case errors.As(err, &de):
		return de.Code
	case err != nil:
		fmt.Fprintln(os.Stderr, "keeper-error:", err)
		return 1
	}
	return 0
}

// childMain is an app of the daemon: it exits 7 once its parent has gone (it then belongs to
// the keeper, the subreaper above it).
func childMain() int {
	ppid, _ := strconv.Atoi(os.Getenv(envPpid)) // the daemon may be gone before this runs
	for deadline := time.Now().Add(30 * time.Second); os.Getppid() == ppid; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 99
		}
	}
	return 7
}

// daemonReport is what a fake daemon writes, as hello.<gen>.json, of the state it received.
type daemonReport struct {
	KeeperPid int
	Build     string
	Records   []reportRecord
	Exits     []Exit
	Env       []string // the TEND_KEEPER_ variables it inherited
}

type reportRecord struct {
	Key   string
	Info  string
	Names []string
	Fds   int
}

// daemonMain is a fake daemon. Daemons number themselves 1, 2, … in the order they start
// (daemon.<gen> holds the pid) and the gen-th ';'-separated part of envScript (the last one for
// every later daemon) is its steps, separated by '+':
//
//	fail3      exit 3 at once, without a hello
//	hello      FromEnv; write hello.<gen>.json; Serve, its exits appended to exits.<gen>
//	serving    say so              bye      say so                upgrade  Upgrade(this binary)
//	put        put envPipe's read end as k     put2  again, as k2
//	putmany-N  put it N times more, as m0001…
//	fatputs    300 puts of 253 fds under one key: a burst that the keeper takes a while to handle
//	child      start a child (childMain), its pid in child.<gen>
//	readpipe   read a line from record k's fd into pipe.<gen>
//	await-X    wait for the file X        mark-X   write X.<gen>         exit0    exit 0
//	block      wait for SIGTERM, which (at any time) writes term.<gen>, says bye and exits 0
func daemonMain() int {
	home := os.Getenv(envHome)
	gen := 1
	for ; ; gen++ {
		f, err := os.OpenFile(filepath.Join(home, fmt.Sprintf("daemon.%d", gen)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprint(f, os.Getpid())
			f.Close()
			break
		}
	}
	file := func(name string) string { return filepath.Join(home, fmt.Sprintf("%s.%d", name, gen)) }
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "daemon %d: %s\n", gen, fmt.Sprintf(format, a...))
		return 90
	}
	scripts := strings.Split(os.Getenv(envScript), ";")
	steps := strings.Split(scripts[min(gen, len(scripts))-1], "+")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	exe, _ := os.Executable()

	var mu sync.Mutex
	var puts int
	var link *Link
	var st State
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		os.WriteFile(file("term"), nil, 0o600)
		mu.Lock()
		if link != nil {
			link.Bye()
		}
		os.Exit(0)
	}()
	put := func(key string) error {
		fd, err := unix.Open(os.Getenv(envPipe), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		link.Put(key, map[string]string{"app": key}, []any{"stdout"}, []int{fd})
		return nil
	}
	for _, step := range steps {
		mu.Lock()
		var err error
		switch name, arg, _ := strings.Cut(step, "-"); name {
		case "fail3":
			os.Exit(3)
		case "hello":
			if link, st, err = FromEnv(log); err != nil || link == nil {
				return fail("FromEnv: %v, %v", link, err)
			}
			r := daemonReport{KeeperPid: st.KeeperPid, Build: st.Build, Exits: st.Exits}
			for _, rec := range st.Records {
				rr := reportRecord{Key: rec.Key, Info: string(rec.Info), Fds: len(rec.Fds)}
				for _, n := range rec.Names {
					rr.Names = append(rr.Names, string(n))
				}
				r.Records = append(r.Records, rr)
			}
			for _, e := range os.Environ() {
				if strings.HasPrefix(e, "TEND_KEEPER_") && !strings.HasPrefix(e, "TEND_KEEPER_TEST_") {
					r.Env = append(r.Env, e)
				}
			}
			b, _ := json.Marshal(r)
			err = writeFile(file("hello")+".json", b)
			go link.Serve(func(e Exit) {
				f, _ := os.OpenFile(file("exits"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
				json.NewEncoder(f).Encode(e)
				f.Close()
			})
		case "serving":
			link.Serving()
		case "bye":
			link.Bye()
		case "upgrade":
			link.Upgrade(exe)
		case "put":
			err = put("k")
		case "put2":
			err = put("k2")
		case "fatputs":
			var f *os.File
			if f, err = os.Open(os.DevNull); err == nil {
				// Written raw, marshalled once: the daemon must outpace the keeper, which
				// installs 253 fds and closes as many for each.
				b, _ := json.Marshal(msg{Op: opPut, Key: "fat", Names: names(MaxFds)})
				oob := unix.UnixRights(slices.Repeat([]int{int(f.Fd())}, MaxFds)...)
				link.mu.Lock()
				for i := 0; i < 300 && err == nil; i++ {
					_, _, err = link.conn.WriteMsgUnix(b, oob, nil)
				}
				link.mu.Unlock()
				f.Close()
			}
		case "putmany":
			var fd int
			if fd, err = unix.Open(os.Getenv(envPipe), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				n, _ := strconv.Atoi(arg)
				for range n { // as fast as the channel takes them
					puts++
					link.Put(fmt.Sprintf("m%04d", puts), nil, []any{"stdout"}, []int{fd})
				}
				unix.Close(fd)
			}
		case "child":
			c := exec.Command(exe)
			c.Env = append(os.Environ(), envRole+"=child", fmt.Sprintf("%s=%d", envPpid, os.Getpid()))
			if err = c.Start(); err == nil {
				err = writeFile(file("child"), []byte(strconv.Itoa(c.Process.Pid)))
			}
		case "readpipe":
			err = readPipe(st, file("pipe"))
		case "await":
			mu.Unlock()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(home, arg)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					return fail("no %s", arg)
				}
			}
			mu.Lock()
		case "mark":
			err = os.WriteFile(file(arg), nil, 0o600)
		case "exit0":
			os.Exit(0)
		case "block":
			mu.Unlock()
			select {}
		default:
			err = fmt.Errorf("unknown step")
		}
		mu.Unlock()
		if err != nil {
			return fail("%s: %v", step, err)
		}
	}
	return fail("the script ended without exit0 or block")
}

// writeFile writes a file whole or not at all, for a test that polls for it.
func writeFile(name string, b []byte) error {
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// readPipe reads a line from the fd of record k into file.
func readPipe(st State, file string) error {
	for _, rec := range st.Records {
		if rec.Key != "k" {
			continue
		}
		if err := unix.SetNonblock(rec.Fds[0], true); err != nil {
			return err
		}
		f := os.NewFile(uintptr(rec.Fds[0]), "k")
		_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 64)
		n, err := f.Read(b)
		if err != nil {
			return err
		}
		return writeFile(file, b[:n])
	}
	return errors.New("no record k")
}
