// Command fixtureserver is the HTTP server that capture.sh runs wrk against to record the real
// wrk outputs in this directory. It lives under testdata so that `go build ./...`, `go vet ./...`
// and `go test ./...` skip it: it is a tool for regenerating fixtures, not part of the harness.
//
// It listens on a free 127.0.0.1 port, prints "port=N" on stdout, and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "ok", "ok | status (every other response is 503) | reset (close every connection unanswered) | dies (serve, then stop listening after -after)")
	delay := flag.Duration("delay", 0, "wait this long before answering each request (ok and status modes)")
	after := flag.Duration("after", time.Second, "dies mode: how long to serve before closing the listener and every connection")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("port=%d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()

	if *mode == "reset" {
		// A raw accept loop: net/http would always answer something, and the point here is a
		// connection that ends with no response at all, which wrk counts as a read error.
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Fatal(err)
			}
			c.Close()
		}
	}

	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(*delay)
		if *mode == "status" && n.Add(1)%2 == 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("hello\n"))
	})}
	switch *mode {
	case "ok", "status":
	case "dies":
		// Close (not Shutdown) drops the listener and every open connection at once, like a
		// crashed server: wrk sees read errors on the open connections and connect errors
		// (refused) when it tries to reconnect.
		time.AfterFunc(*after, func() { srv.Close() })
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	// Stay alive with the port closed until capture.sh kills us, so wrk keeps getting refusals.
	select {}
}
