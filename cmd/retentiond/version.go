package main

import (
	"fmt"

	"github.com/retentiond/retentiond/internal/buildinfo"
	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			i := buildinfo.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "retentiond %s\ncommit: %s\ngo: %s\n", i.Version, i.Commit, i.GoVersion)
			return nil
		},
	}
}
