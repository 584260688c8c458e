// Command tend is a process manager that speaks PM2's language.
package main

import (
	"os"

	"github.com/tend-sh/tend/internal/cli"
	"github.com/tend-sh/tend/internal/proc"
)

func main() {
	proc.ExecHelper(os.Args) // returns unless the daemon runs this binary as its exec helper
	os.Exit(cli.Main())
}
