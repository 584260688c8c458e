// Command bench runs tend and its peers (PM2, supervisord, and no manager at all) on the same
// workloads, on the same machine, in the same run, and prints one table:
//
//	go run ./bench            # every workload, medians of 3 interleaved runs
//	go run ./bench --quick    # one run of the shorter workloads, about three minutes
//	go run ./bench --only 1,3 # some workloads
//
// PM2 is installed from npm into bench/.cache, supervisord from Debian's package; each runs
// with its own home in a temporary folder, and everything is stopped at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick bool
	runs  int
	only  map[int]bool
}

func main() {
	var o options
	only := flag.String("only", "", "comma-separated workload numbers (default: all)")
	flag.BoolVar(&o.quick, "quick", false, "one run of shorter workloads (about three minutes)")
	flag.IntVar(&o.runs, "runs", 3, "interleaved runs per workload; the table shows medians")
	flag.Parse()
	if o.quick {
		o.runs = 1
	}
	if *only != "" {
		o.only = map[int]bool{}
		for _, f := range strings.Split(*only, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil {
				fmt.Fprintf(os.Stderr, "bench: --only takes workload numbers like 1,3; got %q\n", f)
				os.Exit(2)
			}
			o.only[n] = true
		}
	}
	if err := runBench(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runBench(o options, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "tend-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cache := filepath.Join(root, "bench", ".cache")

	tendBin := filepath.Join(work, "bin", "tend")
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", tendBin, "./cmd/tend")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build tend: %v: %s", err, b)
	}
	directBin := filepath.Join(work, "bin", "direct")
	build = exec.Command("go", "build", "-o", directBin, "./bench/direct")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the direct launcher: %v: %s", err, b)
	}
	if err := aptInstall("wrk", "wrk"); err != nil {
		return err
	}
	peers := []Peer{newTend(work, tendBin), newPM2(work, cache), newSupervisor(work)}
	idle := map[string]float64{}
	for _, p := range peers {
		defer p.Close()
		fmt.Fprintf(os.Stderr, "setting up %s ...\n", p.Name())
		if err := p.Setup(); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
		time.Sleep(time.Second)
		idle[p.Name()] = rssMB(p.Pids())
	}
	b := &bench{directBin: directBin, o: o, ctx: ctx, work: work, root: root, peers: peers, t: newTable(peers)}
	b.t.add(1, "CLI (no app)", "daemon RSS idle", "MB", idle)
	for _, w := range workloads {
		if o.only != nil && !o.only[w.n] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "workload %d: %s ...", w.n, w.name)
		began := time.Now()
		if err := w.run(b); err != nil {
			return fmt.Errorf("workload %d (%s): %w", w.n, w.name, err)
		}
		fmt.Fprintf(os.Stderr, " %s\n", time.Since(began).Round(time.Second))
	}
	fmt.Fprintln(out, machine())
	fmt.Fprintln(out)
	b.t.render(out)
	return nil
}

// aptInstall installs a Debian package when its command is missing (the harness installs its
// own peers; it runs as root on the project's machines).
func aptInstall(command, pkg string) error {
	if _, err := exec.LookPath(command); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "installing %s from Debian's packages ...\n", pkg)
	exec.Command("apt-get", "update", "-qq").Run()
	cmd := exec.Command("apt-get", "install", "-y", "-qq", pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v: %.300s", pkg, err, out)
	}
	return nil
}

// repoRoot finds the module root, so that the harness runs from anywhere in the checkout.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the harness inside the tend checkout")
	}
	return filepath.Dir(mod), nil
}

// machine describes where the figures come from.
func machine() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	node, _ := exec.Command("node", "--version").Output()
	model := ""
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(cpu), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	return fmt.Sprintf("machine: %d cores (%s), Linux %s, node %s, %s, %s",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), strings.TrimSpace(string(node)),
		runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}
