package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/spf13/cobra"
)

// runCmd runs a fresh subcommand from newCmd in-process with args and
// returns what it printed to stdout and its error (an *exitError carries
// the exit status).
func runCmd(t *testing.T, newCmd func() *cobra.Command, args ...string) (string, error) {
	t.Helper()
	cmd := newCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}
