// Command clitime times tend's CLI against a Go hello world, both built as `make build` builds
// tend (CGO_ENABLED=0, -ldflags="-s -w"), with apps running under a scratch TEND_HOME:
//
//	go run ./bench/clitime                 # 200 interleaved rounds, 20 apps
//	go run ./bench/clitime -n 500 -apps 20
//	go run ./bench/clitime -vs /path/tend  # also time another tend build in the same rounds
//
// Each run is one fork+exec+wait of the binary, timed on the wall clock from outside, with its
// output to /dev/null. A round runs every command once, in an order that rotates from round to
// round; the table shows median, min and max of each command and its median over the hello
// world's (issue 8: jlist ≤ 1.6×, --version ≤ 1.3×). Everything it starts is stopped at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const hello = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n"

// bench is one timed command line.
type bench struct {
	name  string
	argv  []string
	limit float64 // the most it may take, as a multiple of hello (0: none)
	times []time.Duration
}

func main() {
	runs := flag.Int("n", 200, "timed rounds (each runs every command once)")
	apps := flag.Int("apps", 20, "apps running while jlist is timed")
	tendBin := flag.String("tend", "", "time this tend binary instead of building ./cmd/tend")
	vs := flag.String("vs", "", "another tend binary to time in the same rounds (before/after)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *runs, *apps, *tendBin, *vs); err != nil {
		fmt.Fprintln(os.Stderr, "clitime:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, runs, apps int, tendBin, vs string) error {
	dir, err := os.MkdirTemp("", "clitime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	helloBin := filepath.Join(dir, "hello")
	if err := os.WriteFile(filepath.Join(dir, "hello.go"), []byte(hello), 0o644); err != nil {
		return err
	}
	if err := build(dir, helloBin, "hello.go"); err != nil {
		return err
	}
	if tendBin == "" {
		tendBin = filepath.Join(dir, "tend")
		if err := build(moduleRoot(), tendBin, "./cmd/tend"); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "TEND_HOME="+filepath.Join(dir, "home"))
	var pids []int
	defer func() { stopAll(tendBin, env, pids) }()
	if pids, err = startApps(tendBin, env, apps); err != nil {
		return err
	}

	jlist := fmt.Sprintf("tend jlist (%d apps)", apps)
	benches := []*bench{
		{name: "hello world", argv: []string{helloBin}},
		{name: "tend --version", argv: []string{tendBin, "--version"}, limit: 1.3},
		{name: jlist, argv: []string{tendBin, "jlist"}, limit: 1.6},
	}
	if vs != "" {
		benches = append(benches,
			&bench{name: "vs --version", argv: []string{vs, "--version"}, limit: 1.3},
			&bench{name: "vs " + jlist[5:], argv: []string{vs, "jlist"}, limit: 1.6})
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	const warmup = 10
	for round := range warmup + runs {
		for i := range benches {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b := benches[(round+i)%len(benches)]
			d, err := timeOne(b.argv, env, devnull)
			if err != nil {
				return fmt.Errorf("%s: %v", b.name, err)
			}
			if round >= warmup {
				b.times = append(b.times, d)
			}
		}
	}
	printTable(benches, runs, tendBin, helloBin)
	return nil
}

// build builds pkg the way `make build` does.
func build(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(out) < 2 {
		return "."
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// startApps starts n sleeping apps (which starts the daemon), checks that jlist lists them and
// returns their pids.
func startApps(tend string, env []string, n int) ([]int, error) {
	for i := range n {
		cmd := exec.Command(tend, "start", "/bin/sleep", "--name", fmt.Sprintf("s%d", i), "-s", "--", "1000")
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("tend start: %v\n%s", err, b)
		}
	}
	cmd := exec.Command(tend, "jlist")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tend jlist: %v", err)
	}
	var procs []struct{ Pid int }
	if err := json.Unmarshal(out, &procs); err != nil || len(procs) != n {
		return nil, fmt.Errorf("tend jlist lists %d apps, want %d (%v)", len(procs), n, err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

// stopAll stops the apps and the daemon (`tend kill` waits for both), and kills any app that
// outlived them.
func stopAll(tend string, env []string, pids []int) {
	cmd := exec.Command(tend, "kill")
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "clitime: tend kill: %v\n%s", err, b)
	}
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.HasPrefix(string(b), "/bin/sleep\x001000") {
			fmt.Fprintf(os.Stderr, "clitime: app pid %d outlived tend kill; killing it\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// timeOne runs argv once, from fork to reaped exit, and fails unless it exits 0.
func timeOne(argv, env []string, devnull *os.File) (time.Duration, error) {
	attr := &os.ProcAttr{Env: env, Files: []*os.File{devnull, devnull, devnull}}
	t0 := time.Now()
	p, err := os.StartProcess(argv[0], argv, attr)
	if err != nil {
		return 0, err
	}
	st, err := p.Wait()
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if !st.Success() {
		return 0, fmt.Errorf("%s", st)
	}
	return d, nil
}

func printTable(benches []*bench, runs int, tendBin, helloBin string) {
	base := median(benches[0].times)
	fmt.Printf("%d interleaved rounds; wall clock of fork+exec+wait; tend %s, hello %s\n\n",
		runs, size(tendBin), size(helloBin))
	fmt.Printf("%-26s %9s %9s %9s %8s  %s\n", "command", "median", "min", "max", "× hello", "target")
	for _, b := range benches {
		m := median(b.times)
		ratio := float64(m) / float64(base)
		target := ""
		if b.limit > 0 {
			verdict := "ok"
			if ratio > b.limit {
				verdict = "over"
			}
			target = fmt.Sprintf("≤ %.1f× %s", b.limit, verdict)
		}
		fmt.Printf("%-26s %9s %9s %9s %7.2f×  %s\n", b.name, ms(m), ms(slices.Min(b.times)),
			ms(slices.Max(b.times)), ratio, target)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func size(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}
