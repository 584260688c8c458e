package e2e

import (
	"os/exec"
	"testing"
)

// NeedNode skips a test that needs node where node is not installed.
func NeedNode(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
}

// Unmodified Node apps: nothing in them knows about tend or about cluster mode.
const (
	HelloJS = `
const http = require('http');
const worker = process.env.NODE_APP_INSTANCE;
http.createServer((req, res) => { res.setHeader('X-Worker', worker); res.end('hello\n'); })
  .listen(Number(process.env.PORT));
`
	// 200 ms a request, and no signal handling at all: what a reload must not break.
	SlowJS = `
const http = require('http');
const worker = process.env.NODE_APP_INSTANCE;
http.createServer((req, res) => {
  setTimeout(() => { res.setHeader('X-Worker', worker); res.end('slow\n'); }, 200);
}).listen(Number(process.env.PORT));
`
	// A line every 10 ms: a log whose every line a test can account for.
	TickerJS = `let i = 0; setInterval(() => console.log('tick ' + (i++)), 10);`
)
