package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// probeInterval is how often a probe looks for the process that accepted it.
const probeInterval = 2 * time.Millisecond

// strangerGrace bounds how long a probe accepted by no worker may stay unexplained. Between
// accept() giving the connection its inode and the fd showing up in the process's fd table there
// is a short gap; after that, the acceptor is not one of ours.
const strangerGrace = time.Second

// waitReady returns once every worker has accepted a connection on 127.0.0.1:port.
//
// A successful connect alone proves nothing here: the kernel completes the handshake and queues
// the connection on a listening socket whether or not anyone calls accept() on it, and our
// sockets listen before the workers even start. So each probe connection is followed until a
// process accepts it: in /proc/net/tcp, the server side of a connection has inode 0 while it
// waits in an accept queue and gets its socket's inode once accept() hands it to a process, and
// the fd tables of the workers' process groups say which worker holds that inode. The kernel
// picks the socket, hence the worker, by hashing the connection's addresses, so probes from
// fresh source ports reach every worker after a few tries. A worker that is not accepting yet
// holds its probe until it is: that wait is the point.
func waitReady(ctx context.Context, port int, workers []*worker) error {
	// Worker i is the leader of process group pgid; anything in that group counts as worker i,
	// so a command that wraps the app (a shell, npm) still works.
	byPgid := make(map[int]int, len(workers))
	for _, w := range workers {
		byPgid[w.cmd.Process.Pid] = w.index
	}
	pending := len(workers)
	accepted := make([]bool, len(workers))
	for pending > 0 {
		i, err := probe(ctx, port, byPgid)
		if err != nil {
			var waiting []string
			for i, ok := range accepted {
				if !ok {
					waiting = append(waiting, strconv.Itoa(i))
				}
			}
			return fmt.Errorf("worker(s) %s not accepting: %w", strings.Join(waiting, ", "), err)
		}
		if !accepted[i] {
			accepted[i] = true
			pending--
		}
	}
	return nil
}

// probe opens one connection to 127.0.0.1:port and returns the index of the worker that
// accepts it.
func probe(ctx context.Context, port int, byPgid map[int]int) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return -1, err
	}
	defer c.Close()
	clientPort := c.LocalAddr().(*net.TCPAddr).Port

	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	var strangerSince time.Time
	for {
		inode, err := acceptedInode(port, clientPort)
		if err != nil {
			return -1, err
		}
		if inode != 0 {
			i, ok, err := ownerOf(inode, byPgid)
			if err != nil {
				return -1, err
			}
			if ok {
				return i, nil
			}
			if strangerSince.IsZero() {
				strangerSince = time.Now()
			} else if time.Since(strangerSince) > strangerGrace {
				return -1, fmt.Errorf("a process outside the workers accepted a connection on port %d (another SO_REUSEPORT listener on it?)", port)
			}
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-tick.C:
		}
	}
}

// acceptedInode returns the inode of the server side of the connection
// 127.0.0.1:clientPort → 127.0.0.1:port, from /proc/net/tcp: 0 while the connection waits in an
// accept queue (or has not reached one yet).
func acceptedInode(port, clientPort int) (uint64, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return findServerInode(f, port, clientPort)
}

// findServerInode scans a /proc/net/tcp table for the established connection whose local port
// is port and remote port is clientPort. Addresses are printed as the raw 32-bit value in host
// byte order, so only the ports (fixed 4 hex digits) are compared; every probe is on loopback.
func findServerInode(r io.Reader, port, clientPort int) (uint64, error) {
	local := fmt.Sprintf(":%04X", port)
	remote := fmt.Sprintf(":%04X", clientPort)
	const established = "01"
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != established || !strings.HasSuffix(f[1], local) || !strings.HasSuffix(f[2], remote) {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/tcp: inode %q: %w", f[9], err)
		}
		return inode, nil
	}
	return 0, sc.Err()
}

// ownerOf finds the process, among the process groups in byPgid, that has socket inode open,
// and returns its group's worker index.
func ownerOf(inode uint64, byPgid map[int]int) (int, bool, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1, false, err
	}
	target := fmt.Sprintf("socket:[%d]", inode)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pgid, ok := processGroup(pid)
		if !ok {
			continue
		}
		i, ours := byPgid[pgid]
		if !ours {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // it exited meanwhile
		}
		for _, fd := range fds {
			if link, err := os.Readlink(dir + "/" + fd.Name()); err == nil && link == target {
				return i, true, nil
			}
		}
	}
	return -1, false, nil
}

// processGroup reads the pgid from /proc/PID/stat. It is the third field after the command
// name, which is in parentheses and may itself hold spaces and parentheses.
func processGroup(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, false
	}
	f := strings.Fields(s[end+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, false
	}
	pgid, err := strconv.Atoi(f[2])
	return pgid, err == nil
}
