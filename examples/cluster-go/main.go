// A Go HTTP server under tend's cluster mode, with pkg/worker:
//
//	go build -o /tmp/hello-go ./examples/cluster-go
//	tend start /tmp/hello-go -i 2 --port 8080
//	curl localhost:8080
//	tend reload hello-go
//	tend msg hello-go '{"say":"hi"}'
//
// worker.Serve drains as tend's Node preload does: a reload under keep-alive load fails no
// request.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/tend-sh/tend/pkg/worker"
)

func main() {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from go instance %d (pid %d)\n", worker.Instance(), os.Getpid())
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		for m := range worker.Messages() {
			log.Printf("message from tend: %s", m)
		}
	}()
	// Online once the sockets are served; during a reload the old process is retired from here on.
	time.AfterFunc(0, func() { worker.Ready() })
	// Serves tend's sockets until the kill signal, draining first when a reload replaces it.
	if err := worker.Serve(srv); err != nil {
		log.Fatal(err)
	}
}
