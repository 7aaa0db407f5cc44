package main

import (
	"fmt"
	"strings"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/spf13/cobra"
)

func init() { register(newTokenCmd) }

// newTokenCmd is `retentiond token`, which makes API tokens. The daemon
// never sees a token in its config, only the hash, so creating one is an
// offline operation.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create API tokens",
	}
	cmd.AddCommand(newTokenCreateCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var name string
	var roles []string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE [--role ROLE]",
		Short: "Create a token: print it once, and the config entry holding only its SHA-256",
		Long: `Create a 256-bit API token for one named person (or one shipper) and print it once on
standard output, followed by the line to add under auth.tokens in the config. The config
keeps only the SHA-256 of the token; retentiond cannot show the token again. Roles:
ingest (send records), search (search, count, stats, export), admin (administrative calls).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := policy.ValidTokenName(name); err != nil {
				return &exitError{code: 2, err: err}
			}
			if len(roles) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("give at least one --role (ingest, search, admin)")}
			}
			seen := map[auth.Role]bool{}
			var rs []string
			for _, r := range roles {
				role, err := policy.ParseRole(strings.TrimSpace(r))
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if !seen[role] {
					seen[role] = true
					rs = append(rs, string(role))
				}
			}
			tok, sum, err := auth.NewToken()
			if err != nil {
				return err
			}
			entry, err := config.Token{Name: name, SHA256: sum, Roles: rs}.FlowYAML()
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			fmt.Fprintf(errOut, "Token for %s (shown only now; give it to %s over a safe channel):\n", name, name)
			fmt.Fprintln(out, tok)
			fmt.Fprintln(errOut, "Add this entry under auth.tokens in the config file, then reload the daemon (systemctl reload retentiond, or SIGHUP):")
			fmt.Fprintf(out, "  - %s\n", entry)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "who will hold the token: "+policy.TokenNameRule)
	cmd.Flags().StringArrayVar(&roles, "role", nil, "role to grant: ingest, search or admin (repeatable)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
