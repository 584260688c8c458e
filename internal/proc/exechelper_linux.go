package proc

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ExecHelperArg, as the first argument of tend's own binary, makes it the exec helper: it sets
// LISTEN_PID to its own pid and execs the rest of its arguments, keeping that pid. systemd's
// socket activation protocol wants LISTEN_PID to be the receiver's pid, which the daemon cannot
// know before the fork (gunicorn ignores LISTEN_FDS without it).
const ExecHelperArg = "__tend_exec"

// ExecHelper runs the helper when args (os.Args) ask for it; otherwise it returns.
func ExecHelper(args []string) {
	if len(args) < 3 || args[1] != ExecHelperArg {
		return
	}
	argv := args[2:]
	env := append(os.Environ(), "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := unix.Exec(argv[0], argv, env)
	fmt.Fprintf(os.Stderr, "tend: cannot run %s: %v\n", argv[0], err)
	os.Exit(127)
}
