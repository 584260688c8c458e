package cli

import (
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/home"
)

// IOStreams is where a command reads and writes, and whether its output is a terminal (colours
// only then).
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY bool
	noColor   bool
}

// IsStdoutTTY reports whether Out is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// ColorEnabled reports whether output may be coloured: Out is a terminal, NO_COLOR is unset or
// empty (no-color.org) and --no-color was not given.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// SetNoColor turns colours off (NO_COLOR, --no-color).
func (s *IOStreams) SetNoColor(off bool) { s.noColor = s.noColor || off }

// SetStdoutTTY says whether Out is a terminal.
func (s *IOStreams) SetStdoutTTY(tty bool) { s.stdoutTTY = tty }

// SystemIO is the process's stdin, stdout and stderr.
func SystemIO() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		noColor: os.Getenv("NO_COLOR") != ""}
}

// Factory is what every command is built from: its IO, where it runs, and a lazily made client,
// so that a command failing its flag checks never dials.
type Factory struct {
	IO      *IOStreams
	Home    string   // $TEND_HOME, resolved
	Cwd     string   // where relative scripts and config files are found
	Environ []string // the environment apps inherit
	// Client returns the daemon client, made on first use.
	Client func() (client.API, error)
}

// NewFactory is the Factory of a real run: system IO, $TEND_HOME, and a unix-socket client that
// starts the daemon when none runs (TEND_TIMEOUT, a Go duration, bounds its reads).
func NewFactory() *Factory {
	f := &Factory{IO: SystemIO(), Home: home.Dir(), Environ: os.Environ()}
	f.Cwd, _ = os.Getwd()
	var c *client.Client
	f.Client = func() (client.API, error) {
		if c == nil {
			c = newUnixClient(f)
		}
		return patient{c, f.IO.ErrOut}, nil
	}
	return f
}

// newUnixClient is a client of f's $TEND_HOME, with the read timeout TEND_TIMEOUT sets.
func newUnixClient(f *Factory) *client.Client {
	c := client.New(f.Home, Version, f.IO.ErrOut)
	if d, err := time.ParseDuration(os.Getenv("TEND_TIMEOUT")); err == nil && d > 0 {
		c.Timeout = d
	}
	return c
}
