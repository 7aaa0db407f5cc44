package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/hold"
)

func init() { register(newHoldCmd) }

// newHoldCmd is `retentiond hold add|list|release`: legal holds, through
// the daemon's API (an admin token), so that every action is audited.
func newHoldCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Place, list and release legal holds that keep days past the retention for a case",
		Long: `A legal hold keeps the UTC days FROM..TO (both included) from the purge while a case needs
them as evidence. Past their retention, held days are searchable only under the holding case.
When the hold is released, the next purge destroys the days (unless another hold keeps them)
and removes the hold. An alert fires when a hold outlives its --until date. Every action is
written to the audit log first. Needs an admin token (--token or RETENTIOND_TOKEN).`,
	}
	var c apiClient
	var req hold.Request
	add := &cobra.Command{
		Use:     "add --case ID --from DAY --to DAY --reason TEXT --until DAY",
		Short:   "Place a hold",
		Example: `  retentiond hold add --case INC-42 --from 2026-01-10 --to 2026-01-12 --reason "fraud complaint, police ref 2026-118" --until 2027-06-01`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h hold.Hold
			if err := holdCall(&c, http.MethodPost, "/api/v1/admin/holds", req, &h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "placed %s: case %s, days %s..%s, until %s\n", h.ID, h.Case, h.From, h.To, h.Until)
			return nil
		},
	}
	addClientFlags(add, &c)
	add.Flags().StringVar(&req.Case, "case", "", "case (incident) id the hold serves")
	add.Flags().StringVar(&req.From, "from", "", "first held UTC day, YYYY-MM-DD")
	add.Flags().StringVar(&req.To, "to", "", "last held UTC day (included), YYYY-MM-DD")
	add.Flags().StringVar(&req.Reason, "reason", "", "why the days must be kept")
	add.Flags().StringVar(&req.Until, "until", "", "the day by which the case expects to release the hold, YYYY-MM-DD")
	for _, f := range []string{"case", "from", "to", "reason", "until"} {
		_ = add.MarkFlagRequired(f)
	}

	var lc apiClient
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the holds (active, and released ones the next purge removes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l struct {
				Holds []hold.Hold `json:"holds"`
			}
			if err := holdCall(&lc, http.MethodGet, "/api/v1/admin/holds", nil, &l); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCASE\tFROM\tTO\tUNTIL\tSTATE\tCREATED BY\tREASON")
			for _, h := range l.Holds {
				state := "active"
				if h.Released != nil {
					state = "released " + h.Released.Format(time.DateOnly)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Case, h.From, h.To, h.Until, state, h.CreatedBy, h.Reason)
			}
			return tw.Flush()
		},
	}
	addClientFlags(list, &lc)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var rc apiClient
	var reason string
	release := &cobra.Command{
		Use:   "release ID --reason TEXT",
		Short: "Release a hold; the next purge destroys the days it kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h hold.Hold
			body := map[string]string{"reason": reason}
			if err := holdCall(&rc, http.MethodPost, "/api/v1/admin/holds/"+url.PathEscape(args[0])+"/release", body, &h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "released %s (case %s, days %s..%s); the next purge destroys the days no other hold keeps\n",
				h.ID, h.Case, h.From, h.To)
			return nil
		},
	}
	addClientFlags(release, &rc)
	release.Flags().StringVar(&reason, "reason", "", "why the hold ends")
	_ = release.MarkFlagRequired("reason")
	cmd.AddCommand(add, list, release)
	return cmd
}

// holdCall sends in (if any) as JSON and decodes the answer into out.
func holdCall(c *apiClient, method, path string, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(method, path, nil, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
