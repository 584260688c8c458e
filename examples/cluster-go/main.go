// A Go HTTP server under tend's cluster mode, with pkg/worker:
//
//	go build -o /tmp/hello-go ./examples/cluster-go
//	tend start /tmp/hello-go -i 2 --port 8080
//	curl localhost:8080
//	tend reload hello-go
//	tend msg hello-go '{"say":"hi"}'
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/tend-sh/tend/pkg/worker"
)

func main() {
	lns, err := worker.Listeners()
	if err != nil || len(lns) == 0 {
		log.Fatalf("no socket from tend (start me with --port): %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go instance %d (pid %d)\n", worker.Instance(), os.Getpid())
	})}
	go srv.Serve(lns[0])
	worker.Ready() // online now; during a reload, the old process is retired from here on

	go func() {
		for m := range worker.Messages() {
			log.Printf("message from tend: %s", m)
		}
	}()

	// tend's kill_signal (SIGINT by default): finish the requests in flight, then exit.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Shutdown(context.Background())
}
