package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/pkg/worker"
)

// sendMessages floods the IPC channel: n process:msg messages to the app named to, each with a
// sequence number and padding (the sizes, in bytes, taken in turn), as fast as the channel takes
// them; then "sent n". It writes the raw channel, a message's padding a chunk at a time, so that a
// message longer than the app's memory can be sent.
func sendMessages(to string, n int, sizes string) {
	c := rawChannel()
	w := bufio.NewWriterSize(c, 1<<20)
	fmt.Fprintln(w, `"ready"`)
	var pads []int
	for _, s := range strings.Split(sizes, ",") {
		size, _ := strconv.Atoi(s)
		pads = append(pads, size)
	}
	chunk := strings.Repeat("x", 1<<20)
	for i := range n {
		fmt.Fprintf(w, `{"type":"process:msg","name":%q,"data":{"seq":%d,"pad":"`, to, i)
		for left := pads[i%len(pads)]; left > 0; left -= len(chunk) {
			w.WriteString(chunk[:min(left, len(chunk))])
		}
		w.WriteString("\"}}\n")
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "send:", err)
		os.Exit(1)
	}
	fmt.Printf("sent %d\n", n)
}

// rawChannel opens the IPC channel tend passed (TEND_IPC_FD) without pkg/worker, to write what a
// well-behaved app would not.
func rawChannel() net.Conn {
	fd, _ := strconv.Atoi(os.Getenv("TEND_IPC_FD"))
	c, err := net.FileConn(os.NewFile(uintptr(fd), "ipc"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipc:", err)
		os.Exit(1)
	}
	return c
}

// recvMessages prints "recv seq=S bytes=B" for each message tend delivers.
func recvMessages() {
	if err := worker.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, "ready:", err)
	}
	for m := range worker.Messages() {
		var v struct {
			Data struct {
				Seq int `json:"seq"`
			} `json:"data"`
		}
		json.Unmarshal(m, &v)
		fmt.Printf("recv seq=%d bytes=%d\n", v.Data.Seq, len(m))
	}
	fmt.Println("channel closed")
}

// askPorts plays a hostile app: on its raw IPC channel it asks for n listening sockets, one
// queryServer of port 0 each (Node's listen(0), which gives a new port every time), and prints
// "ports granted=G refused=R" once every ask is answered.
func askPorts(n int) {
	c := rawChannel()
	// "ready" first: the asks below then come from an instance that is online, as a server
	// opened late by a running app does.
	fmt.Fprintln(c, `"ready"`)
	for i := range n {
		fmt.Fprintf(c, `{"cmd":"NODE_CLUSTER","act":"queryServer","seq":%d,"address":"127.0.0.1","port":0,"addressType":4,"fd":null,"index":%d,"data":null}`+"\n", i, i)
	}
	granted, refused := 0, 0
	sc := bufio.NewScanner(c)
	for granted+refused < n && sc.Scan() {
		var m struct {
			Cmd   string `json:"cmd"`
			Errno int    `json:"errno"`
			Ack   *int   `json:"ack"`
			Msg   *struct {
				Errno int `json:"errno"`
			} `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.Cmd == "NODE_HANDLE": // a socket (read without its fd, which the kernel drops)
			fmt.Fprintln(c, `{"cmd":"NODE_HANDLE_ACK"}`)
			granted++
		case m.Cmd == "NODE_CLUSTER" && m.Ack != nil && m.Errno != 0:
			refused++
		}
	}
	fmt.Printf("ports granted=%d refused=%d\n", granted, refused)
}
