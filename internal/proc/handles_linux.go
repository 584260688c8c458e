package proc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Handles are the kernel objects one running process of an instance owns: its stdio pipes, the
// daemon's end of Node's IPC channel, and the dups of its slot sockets it inherits. They are created here and held in this one struct
// (DESIGN rule 2), so that a later daemon can be handed them whole.
//
// Every fd is CLOEXEC: the child gets its ends through Cmd.Files (dup2 clears the flag there),
// and no other child ever inherits them, since one stray write end means EOF never comes.
type Handles struct {
	StdinW int // the daemon keeps stdin open, so `send` can write to it later
	OutR   int
	ErrR   int
	IPC    int // daemon end of the IPC socketpair, or -1

	// IPCChildFd is the fd number of the IPC channel in the child: 3, or after the listening
	// sockets (systemd's LISTEN_FDS start at 3).
	IPCChildFd int

	childEnds []int // stdin r, stdout w, stderr w, the listening sockets, the IPC child end
}

// NewHandles creates the pipes, and the IPC socketpair when ipc is set. listen are dups of slot
// sockets the child gets as fds 3, 4…; NewHandles owns them from now on, even on error.
func NewHandles(ipc bool, listen []int) (*Handles, error) {
	h := &Handles{StdinW: -1, OutR: -1, ErrR: -1, IPC: -1, IPCChildFd: -1}
	var fds [3][2]int
	for i := range fds {
		if err := unix.Pipe2(fds[i][:], unix.O_CLOEXEC); err != nil {
			for j := 0; j < i; j++ {
				unix.Close(fds[j][0])
				unix.Close(fds[j][1])
			}
			for _, fd := range listen {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("create pipe: %w", err)
		}
	}
	h.StdinW, h.OutR, h.ErrR = fds[0][1], fds[1][0], fds[2][0]
	// A write to an app that does not read its stdin must fail, not block the daemon.
	_ = unix.SetNonblock(h.StdinW, true)
	h.childEnds = append([]int{fds[0][0], fds[1][1], fds[2][1]}, listen...)
	if ipc {
		// Node requires an AF_UNIX stream socket for NODE_CHANNEL_FD (research §1.1).
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			h.CloseChildEnds()
			h.closeAll()
			return nil, fmt.Errorf("create ipc socketpair: %w", err)
		}
		h.IPC = sp[0]
		h.IPCChildFd = len(h.childEnds)
		h.childEnds = append(h.childEnds, sp[1])
	}
	return h, nil
}

// ChildFiles are the fds the child gets as 0, 1, 2, 3….
func (h *Handles) ChildFiles() []int { return h.childEnds }

// CloseChildEnds closes the daemon's copies of the child's ends, once the child has them (or
// the start failed), so that EOF on the pipes means every writer is gone.
func (h *Handles) CloseChildEnds() {
	for _, fd := range h.childEnds {
		unix.Close(fd)
	}
	h.childEnds = nil
}

// CloseStdin closes the write end of the child's stdin.
func (h *Handles) CloseStdin() {
	if h.StdinW >= 0 {
		unix.Close(h.StdinW)
		h.StdinW = -1
	}
}

func (h *Handles) closeAll() {
	for _, p := range []*int{&h.StdinW, &h.OutR, &h.ErrR, &h.IPC} {
		if *p >= 0 {
			unix.Close(*p)
			*p = -1
		}
	}
}
