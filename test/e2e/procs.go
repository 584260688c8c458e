package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStat reads a process's state letter and parent pid from /proc (the fields after the
// command name, which may hold spaces).
func ProcStat(pid int) (state byte, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, 0, false
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

func PidAlive(pid int) bool {
	state, _, ok := ProcStat(pid)
	return ok && state != 'Z'
}

// AllPids lists every process on the machine.
func AllPids() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
