// Command direct runs the "direct" cluster baseline of the benchmarks: N copies of an app, each
// accepting on its own SO_REUSEPORT listening socket handed over as fd 3, so that the kernel
// spreads connections over them and nothing sits between the client and the app. Its figures
// are the physical limit that PM2's cluster mode and tend are measured against.
//
//	go build -o /tmp/direct ./bench/direct
//	/tmp/direct -workers 2 -port 0 -- node bench/apps/hello-fd.js
//
// stdout carries exactly two lines for the harness: "port=N" once the sockets are bound, then
// "ready" once every worker has accepted a connection. The workers' stdout goes to stderr so that
// nothing they print can get between those lines. Each worker gets LISTEN_FDS=1 and
// WORKER_INDEX=i (0-based) in its environment.
//
// SIGTERM or SIGINT stops the workers (SIGTERM to each process group, SIGKILL after 2 s) and
// exits 0; so does the death of the launcher's parent (`go run` does not pass signals on). A worker that exits on its own invalidates the baseline: the launcher then stops the
// others and exits 1. If the launcher itself is killed, the kernel kills the workers
// (PR_SET_PDEATHSIG), so no run leaves a worker behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stopGrace is how long a worker has to exit after SIGTERM before its group gets SIGKILL.
const stopGrace = 2 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command, apart from os.Exit, so that the test binary can play the launcher.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("direct", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: direct [-workers N] [-port P] [-ready-timeout D] -- command [args...]")
		fs.PrintDefaults()
	}
	nWorkers := fs.Int("workers", 2, "number of workers, each with its own SO_REUSEPORT socket")
	port := fs.Int("port", 0, "TCP port on 127.0.0.1; 0 picks a free one")
	readyTimeout := fs.Duration("ready-timeout", 10*time.Second, "how long the workers have to accept a first connection")
	withIPC := fs.Bool("ipc", false, "give each worker an IPC channel (NODE_CHANNEL_FD) that nothing writes to, as a managed Node app has (bench/gap.sh)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	command := fs.Args()
	if len(command) == 0 || *nWorkers < 1 || *port < 0 || *port > 65535 {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "direct: %v\n", err)
		return 1
	}

	// Before any worker exists: a SIGTERM that arrives while they start must still stop them
	// instead of killing the launcher outright.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// Under `go run`, the harness's SIGTERM reaches the go command, which dies without passing
	// it on, and the launcher would run on with its workers. Asking for a SIGTERM when the
	// parent dies turns that into a normal stop. A parent already gone has reparented us.
	ppid := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		return fail(fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err))
	}
	if os.Getppid() != ppid {
		select {
		case sigs <- syscall.SIGTERM:
		default: // a real signal is already queued: it stops us just as well
		}
	}

	fds, boundPort, err := listenAll(*port, *nWorkers)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "port=%d\n", boundPort)

	workers, err := startWorkers(command, fds, *withIPC, stderr)
	if err != nil {
		stopAll(workers, stderr)
		return fail(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readyCtx, readyCancel := context.WithTimeout(ctx, *readyTimeout)
	defer readyCancel()
	readyErr := make(chan error, 1)
	go func() { readyErr <- waitReady(readyCtx, boundPort, workers) }()

	died := make(chan *worker, len(workers))
	for _, w := range workers {
		go func() {
			<-w.exited
			died <- w
		}()
	}

	for {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "direct: %v, stopping %d workers\n", sig, len(workers))
			cancel()
			stopAll(workers, stderr)
			return 0
		case w := <-died:
			cancel()
			stopAll(workers, stderr)
			return fail(fmt.Errorf("worker %d (pid %d) exited on its own: %v", w.index, w.cmd.Process.Pid, w.cmd.ProcessState))
		case err := <-readyErr:
			if err != nil {
				cancel()
				stopAll(workers, stderr)
				return fail(fmt.Errorf("waiting for the workers to accept connections on 127.0.0.1:%d: %w", boundPort, err))
			}
			fmt.Fprintln(stdout, "ready")
			readyErr = nil // a nil channel is never ready: stop selecting on it
		}
	}
}

// worker is one started app process, the leader of its own process group.
type worker struct {
	index int
	cmd   *exec.Cmd
	// exited is closed once the process has exited, before it is reaped: until stopAll reaps
	// it, its zombie keeps the pgid from being reused, so signalling the group stays safe.
	exited chan struct{}
}

// startWorkers starts one worker per listening socket, the socket as its fd 3. It hands each
// socket over and closes the launcher's copy, so a worker that dies takes its socket with it
// and the kernel stops routing connections to a queue nobody accepts from. On error it returns
// the workers started so far, for the caller to stop.
func startWorkers(command []string, fds []int, withIPC bool, stderr io.Writer) ([]*worker, error) {
	env := workerEnv(os.Environ())
	var workers []*worker
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "listener-"+strconv.Itoa(i))
		cmd := exec.Command(command[0], command[1:]...)
		cmd.Env = append(env, "LISTEN_FDS=1", "WORKER_INDEX="+strconv.Itoa(i))
		cmd.ExtraFiles = []*os.File{f}
		if withIPC {
			// The launcher keeps its end open (and never closes it: it lives as long as the
			// worker), so that the worker's channel stays up.
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return workers, fmt.Errorf("ipc channel: %w", err)
			}
			child := os.NewFile(uintptr(sp[1]), "ipc")
			defer child.Close()
			cmd.ExtraFiles = append(cmd.ExtraFiles, child)
			cmd.Env = append(cmd.Env, "NODE_CHANNEL_FD=4", "NODE_CHANNEL_SERIALIZATION_MODE=json")
		}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{
			// Its own group, so that stopping it reaches anything it spawned.
			Setpgid: true,
			// If the launcher is SIGKILLed, no stop sequence runs: the kernel kills the worker
			// instead. Strictly this fires when the forking OS thread exits, and Go only ends a
			// thread when a goroutine exits while locked to it, which nothing here does.
			Pdeathsig: syscall.SIGKILL,
		}
		err := cmd.Start()
		// os.StartProcess calls f.Fd(), which switches the socket to blocking mode, and
		// O_NONBLOCK lives on the open file description the worker shares. A worker whose
		// event loop then blocks in accept() stops serving everything else (Node 18 hangs),
		// so the flag is put back before anything else happens.
		if nbErr := unix.SetNonblock(fd, true); nbErr != nil && err == nil {
			err = fmt.Errorf("set listening socket non-blocking again: %w", nbErr)
		}
		f.Close()
		if err != nil {
			if cmd.Process != nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			return workers, fmt.Errorf("start worker %d (%s): %w", i, strings.Join(command, " "), err)
		}
		w := &worker{index: i, cmd: cmd, exited: make(chan struct{})}
		go w.watch()
		workers = append(workers, w)
	}
	return workers, nil
}

// workerEnv drops what would describe the launcher's own socket activation rather than the
// worker's: LISTEN_PID would name the wrong process, LISTEN_FDNAMES the wrong fds.
func workerEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "LISTEN_PID=") || strings.HasPrefix(kv, "LISTEN_FDNAMES=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// watch closes w.exited when the process exits. WNOWAIT leaves the zombie in place: reaping it
// is stopAll's job, after its last signal to the group.
func (w *worker) watch() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, w.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	close(w.exited)
}

// stopAll stops every worker's process group: SIGTERM, then SIGKILL once stopGrace has passed
// or every leader has exited, then reaps the leaders. The SIGKILL goes to every group, exited
// leader or not, to sweep children left in it; the leaders are not reaped yet at that point, so
// their pgids cannot have been reused by unrelated processes.
func stopAll(workers []*worker, stderr io.Writer) {
	for _, w := range workers {
		unix.Kill(-w.cmd.Process.Pid, unix.SIGTERM)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
wait:
	for _, w := range workers {
		select {
		case <-w.exited:
		case <-grace.C:
			break wait
		}
	}
	for _, w := range workers {
		unix.Kill(-w.cmd.Process.Pid, unix.SIGKILL)
	}
	for _, w := range workers {
		<-w.exited
		// The exit status was decided by our signals; only an unexpected exit is reported,
		// and that from ProcessState, which Wait fills in.
		var exitErr *exec.ExitError
		if err := w.cmd.Wait(); err != nil && !errors.As(err, &exitErr) {
			fmt.Fprintf(stderr, "direct: reap worker %d: %v\n", w.index, err)
		}
	}
}
