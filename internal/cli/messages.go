package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/client"
	"github.com/tend-sh/tend/internal/config"
)

// MsgOptions are msg's.
type MsgOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)

	Target  string
	Message json.RawMessage
}

// NewCmdMsg builds `tend msg`.
func NewCmdMsg(f *Factory, runF func(*MsgOptions) error) *cobra.Command {
	opts := &MsgOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "msg <name|id|all> <json>",
		Short: "Send a JSON message to process.on('message') in each instance of an app",
		Long: "Send a JSON message to process.on('message') in each instance of an app.\n" +
			"Unlike send, which writes a line to the app's stdin, msg uses the IPC channel.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !json.Valid([]byte(args[1])) {
				return usagef("message %q is not JSON; quote a string as '\"hello\"'", args[1])
			}
			opts.Target, opts.Message = args[0], json.RawMessage(args[1])
			if runF != nil {
				return runF(opts)
			}
			return msgRun(opts)
		},
	}
}

func msgRun(opts *MsgOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Message(opts.Target, opts.Message)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "message sent to %d instance(s) of %s\n", len(res.IDs), opts.Target)
	return nil
}

// SendOptions are send's.
type SendOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)

	Target string
	Line   string
}

// NewCmdSend builds `tend send`.
func NewCmdSend(f *Factory, runF func(*SendOptions) error) *cobra.Command {
	opts := &SendOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:   "send <name|id> <line>...",
		Short: "Write a line to the stdin of an app (as PM2's send)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target, opts.Line = args[0], strings.Join(args[1:], " ")
			if runF != nil {
				return runF(opts)
			}
			return sendRun(opts)
		},
	}
}

func sendRun(opts *SendOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	res, err := c.Stdin(opts.Target, opts.Line)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "line written to the stdin of %d instance(s) of %s\n", len(res.IDs), opts.Target)
	return nil
}

// SignalOptions are sendSignal's.
type SignalOptions struct {
	IO     *IOStreams
	Client func() (client.API, error)

	Signal string // as given: a name (SIGUSR2, USR2) or a number
	Target string
}

// NewCmdSignal builds `tend sendSignal`.
func NewCmdSignal(f *Factory, runF func(*SignalOptions) error) *cobra.Command {
	opts := &SignalOptions{IO: f.IO, Client: f.Client}
	return &cobra.Command{
		Use:     "sendSignal <signal> <name|id|all>",
		Aliases: []string{"sendsignal", "signal"},
		Short:   "Send a signal to the main process of an app",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.ParseSignal(args[0]); err != nil {
				return usagef("%v", err)
			}
			opts.Signal, opts.Target = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return signalRun(opts)
		},
	}
}

func signalRun(opts *SignalOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	if err := c.Signal(opts.Target, opts.Signal); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "sent %s to %s\n", opts.Signal, opts.Target)
	return nil
}
