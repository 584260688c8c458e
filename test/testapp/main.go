// Command testapp plays a managed app in tend's tests: it crashes, ignores signals, floods
// stdout, spawns grandchildren that escape the process group, and reports what it saw.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/pkg/worker"
)

func main() {
	var (
		exitAfter   = flag.Duration("exit-after", 0, "exit after this long (0 = run until signalled)")
		exitCode    = flag.Int("code", 0, "exit code when -exit-after passes")
		ignore      = flag.String("ignore", "", "comma-separated signals to ignore (INT,TERM)")
		flood       = flag.Int("flood", 0, "print this many numbered lines, then keep running")
		stderrLines = flag.Int("stderr", 0, "print this many numbered lines to stderr")
		grandchild  = flag.Bool("grandchild", false, "start a child that calls setsid and sleeps, and print its pid")
		child       = flag.Bool("child", false, "start a child in our process group and print its pid")
		printEnv    = flag.String("print-env", "", "comma-separated variables to print as KEY=VALUE")
		pidFile     = flag.String("pidfile", "", "write our pid here")
		sleepMode   = flag.Bool("sleep", false, "internal: just sleep (used as a grandchild)")
		onSignal    = flag.String("on-signal", "", "print this line when a signal arrives, then exit 0")
		floodOnSig  = flag.Int("flood-on-signal", 0, "when a signal arrives, print this many numbered lines and END, then exit 0")
		serve       = flag.Bool("serve", false, "serve HTTP on the sockets tend passes (LISTEN_FDS), via pkg/worker, and echo messages")
		readyAfter  = flag.Duration("ready-after", -1, "with -serve: tell tend ready after this long (-1: never)")
		crashIfFile = flag.String("crash-if", "", "exit 1 at once when this file exists")
		echoStdin   = flag.Bool("echo-stdin", false, "print each stdin line as stdin=<line>")
		notifyAfter = flag.Duration("notify-after", -1, "with -serve: send READY=1 to NOTIFY_SOCKET after this long")
		drainDelay  = flag.Duration("drain-delay", 0, "with -serve: on a signal, keep serving this long before shutting down (a slow drain)")
		ready       = flag.Bool("ready", false, "once every signal handler is installed, print \"ready pid=N\" (and tell tend, when it listens)")
		metric      = flag.String("metric", "", "name=value: report this custom metric through pkg/worker (needs an IPC channel)")
		escape      = flag.Bool("escape", false, "double fork: a helper starts a setsid sleeper and exits at once, so the sleeper leaves our tree; print its pid")
		escapeHelp  = flag.Bool("escape-helper", false, "internal: the middle process of -escape")
		sendTo      = flag.String("send-to", "", "send -send messages (process:msg) to the app of this name, then keep running (needs an IPC channel)")
		sendN       = flag.Int("send", 1, "with -send-to: how many messages")
		sendSize    = flag.String("send-size", "10", "with -send-to: bytes of padding in each message; a comma-separated list is taken in turn")
		recv        = flag.Bool("recv", false, "print each message tend delivers as recv seq=S bytes=B (needs an IPC channel)")
		askN        = flag.Int("ask-ports", 0, "ask tend for this many listening sockets on the raw IPC channel, then print how many it gave")
	)
	flag.Parse()
	if *crashIfFile != "" {
		if _, err := os.Stat(*crashIfFile); err == nil {
			fmt.Fprintln(os.Stderr, "crashing: "+*crashIfFile+" exists")
			os.Exit(1)
		}
	}
	if *notifyAfter >= 0 {
		time.AfterFunc(*notifyAfter, func() {
			c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "notify:", err)
				return
			}
			c.Write([]byte("STATUS=serving\nREADY=1"))
			c.Close()
		})
	}
	if name, value, ok := strings.Cut(*metric, "="); ok {
		v, _ := strconv.ParseFloat(value, 64)
		if err := worker.Metric(name, v, "items"); err != nil {
			fmt.Fprintln(os.Stderr, "metric:", err)
		}
	}
	if *serve {
		serveFds(*readyAfter, *drainDelay)
	}
	if *recv {
		go recvMessages()
	}
	if *sendTo != "" {
		sendMessages(*sendTo, *sendN, *sendSize)
	}
	if *askN > 0 {
		askPorts(*askN)
	}
	if *echoStdin {
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				fmt.Printf("stdin=%s\n", sc.Text())
			}
		}()
	}
	if *sleepMode {
		time.Sleep(time.Hour)
		return
	}
	for _, s := range strings.Split(*ignore, ",") {
		switch s {
		case "INT":
			signal.Ignore(syscall.SIGINT)
		case "TERM":
			signal.Ignore(syscall.SIGTERM)
		}
	}
	if *onSignal != "" {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-c
			fmt.Println(*onSignal)
			os.Exit(0)
		}()
	}
	if *floodOnSig > 0 {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-c
			w := bufio.NewWriterSize(os.Stdout, 1<<16)
			for i := 0; i < *floodOnSig; i++ {
				fmt.Fprintf(w, "bye %07d\n", i)
			}
			fmt.Fprintln(w, "END")
			w.Flush()
			os.Exit(0)
		}()
	}
	if *ready {
		// A fork-mode app is online at spawn, before the lines above ran: a test that signals
		// the app waits for this line, so the signal finds the handlers installed.
		fmt.Printf("ready pid=%d\n", os.Getpid())
		if sock := os.Getenv("NOTIFY_SOCKET"); sock != "" {
			if c, err := net.Dial("unixgram", sock); err == nil {
				c.Write([]byte("READY=1"))
				c.Close()
			}
		}
		if err := worker.Ready(); err != nil {
			fmt.Fprintln(os.Stderr, "ready:", err)
		}
	}
	if *pidFile != "" {
		os.WriteFile(*pidFile, []byte(fmt.Sprint(os.Getpid())), 0o644)
	}
	for _, k := range strings.Split(*printEnv, ",") {
		if k != "" {
			v, ok := os.LookupEnv(k)
			fmt.Printf("%s=%s (set=%v)\n", k, v, ok)
		}
	}
	if *escapeHelp {
		cmd := exec.Command(os.Args[0], "-sleep")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			os.Exit(1)
		}
		fmt.Print(cmd.Process.Pid)
		os.Exit(0) // the sleeper is orphaned: re-parented, out of the app's tree and group
	}
	if *escape {
		out, err := exec.Command(os.Args[0], "-escape-helper").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "escape:", err)
			os.Exit(1)
		}
		fmt.Printf("escaped=%s\n", out)
	}
	if *grandchild || *child {
		cmd := exec.Command(os.Args[0], "-sleep")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: *grandchild}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "spawn:", err)
			os.Exit(1)
		}
		fmt.Printf("child=%d\n", cmd.Process.Pid)
	}
	if *flood > 0 {
		w := make([]byte, 0, 1<<16)
		for i := 0; i < *flood; i++ {
			w = fmt.Appendf(w, "line %07d %s\n", i, strings.Repeat("x", 50))
			if len(w) > 60000 {
				os.Stdout.Write(w)
				w = w[:0]
			}
		}
		os.Stdout.Write(w)
	}
	for i := 0; i < *stderrLines; i++ {
		fmt.Fprintf(os.Stderr, "err %d\n", i)
	}
	if *exitAfter > 0 {
		time.Sleep(*exitAfter)
		os.Exit(*exitCode)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// serveFds plays a Go app in cluster mode: it serves on the inherited sockets, names the instance
// that answered, says ready, and prints each message it gets.
func serveFds(readyAfter, drainDelay time.Duration) {
	lns, err := worker.Listeners()
	if err != nil || len(lns) == 0 {
		fmt.Fprintln(os.Stderr, "no inherited sockets:", err)
		os.Exit(3)
	}
	fmt.Printf("listening on %d socket(s), LISTEN_PID cleared=%v\n", len(lns), os.Getenv("LISTEN_PID") == "")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Worker", fmt.Sprint(worker.Instance()))
		w.Header().Set("X-Pid", fmt.Sprint(os.Getpid()))
		fmt.Fprintln(w, "hello")
	})
	// As a well-behaved Go server does: on SIGINT or SIGTERM, stop accepting and finish the
	// requests in flight. The socket stays open in tend, so nothing queued on it is lost.
	var servers []*http.Server
	for _, ln := range lns {
		srv := &http.Server{Handler: h}
		servers = append(servers, srv)
		go srv.Serve(ln)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		time.Sleep(drainDelay) // the app's behaviour: slow to stop
		for _, srv := range servers {
			srv.Shutdown(context.Background())
		}
		os.Exit(0)
	}()
	if readyAfter >= 0 {
		time.AfterFunc(readyAfter, func() {
			if err := worker.Ready(); err != nil {
				fmt.Fprintln(os.Stderr, "ready:", err)
			}
		})
	}
	for m := range worker.Messages() {
		fmt.Printf("msg=%s\n", m)
	}
	select {}
}
