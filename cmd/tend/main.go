// Command tend is a process manager that speaks PM2's language.
package main

import (
	"os"

	"github.com/tend-sh/tend/internal/cli"
)

func main() { os.Exit(cli.Main()) }
