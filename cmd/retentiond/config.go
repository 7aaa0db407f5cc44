package main

import (
	"errors"
	"fmt"

	"github.com/retentiond/retentiond/internal/config"
	"github.com/spf13/cobra"
)

func init() { register(newConfigCmd) }

// newConfigCmd groups the commands that inspect configuration without
// starting the daemon, so an operator can check an edit before a restart.
func newConfigCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or show the daemon's configuration",
		Long: `Check or show the configuration 'retentiond serve' would run with: the embedded defaults,
then the YAML file (--config FILE, else /etc/retentiond/retentiond.yaml, else ./retentiond.yaml),
then RETENTIOND_* environment variables (every key, dots as underscores, e.g. RETENTIOND_PURGE_SCHEDULE).
See docs/configuration.md for every key.`,
	}
	cmd.PersistentFlags().StringVar(&file, "config", "", "configuration file (default: /etc/retentiond/retentiond.yaml, else ./retentiond.yaml)")

	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration; print every problem with its fix (exit 1 when invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(file)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config OK: %s\n", c.Source())
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration as YAML (token hashes redacted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(file)
			if err != nil {
				var ce *config.Error
				if errors.As(err, &ce) {
					return &exitError{code: 1, err: err}
				}
				return err
			}
			out, err := c.Redacted().YAML()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# effective configuration from %s\n%s", c.Source(), out)
			return nil
		},
	}
	cmd.AddCommand(check, show)
	return cmd
}
