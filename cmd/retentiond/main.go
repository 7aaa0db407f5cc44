// Command retentiond is the retentiond daemon and its command-line tools: it
// ingests webhosting access logs, keeps them for exactly the configured
// retention, lets investigators search them, and destroys them on schedule.
// Run `retentiond --help` for the commands.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// subcommands holds the constructors of the top-level commands. Each command
// lives in its own file and registers itself from an init function, so that
// adding a command never means editing a shared list.
var subcommands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { subcommands = append(subcommands, newCmd) }

// exitError carries a specific exit status out of a command (for example 1
// for "audit verification failed" versus 2 for "could not read the file").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "retentiond",
		Short: "Keep webhosting access logs for exactly the promised retention, and search them during an incident",
		Long: `retentiond stores one record per pageview (time, domain, path, user agent, client IP and nothing else),
keeps it for the configured retention (two calendar years by default), then destroys it automatically.
Investigators search the records by IP, CIDR, domain, path, user agent and time range.

Start the daemon with 'retentiond serve'; the other commands talk to a running daemon
(--server, default http://127.0.0.1:8080) or work on a stopped daemon's data directory.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "retentiond:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
