package main

import (
	"net"
	"time"

	"github.com/tend-sh/tend/internal/httpload"
)

// freePort asks the kernel for a free port on loopback.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitServing waits until addr answers a request.
func waitServing(addr string, timeout time.Duration) bool {
	return waitUntil(timeout, 50*time.Millisecond, func() bool { _, err := httpload.Get(addr); return err == nil })
}
