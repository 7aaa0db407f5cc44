package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/cases"
)

func init() { register(newCaseCmd) }

// newCaseCmd is `retentiond case`: the case registry, through the running
// daemon's API (so that every change is authenticated and audited there).
func newCaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "case",
		Short: "Open, approve, close, list and show the cases searches run under",
		Long: `A search needs a case: an investigation an admin opened and a different admin approved
(four-eyes), with a time range and optionally a scope that bound what its searches may see.
The policy: the pageview data is never consulted without exceptional permission, the only
exception being a data leak. Every change is a line of the audit log. See docs/security.md.

Opening, approving and closing need an admin token; list and show work with a search token
too (show's audit trail needs admin). The token comes from --token or RETENTIOND_TOKEN.`,
	}
	cmd.AddCommand(newCaseOpenCmd(), newCaseApproveCmd(), newCaseCloseCmd(), newCaseListCmd(), newCaseShowCmd())
	return cmd
}

// caseJSON sends a JSON body (or none) and decodes the answer into v.
func caseJSON(c *apiClient, method, path string, q url.Values, body any, v any) error {
	var rd io.Reader
	ct := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(method, path, q, rd, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	return nil
}

func casePath(id string, rest ...string) string {
	return "/api/v1/cases/" + url.PathEscape(id) + strings.Join(rest, "")
}

func newCaseOpenCmd() *cobra.Command {
	var c apiClient
	var o cases.OpenRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "open --id ID --title T --reason R --from TIME --to TIME [--scope QUERY] [--expires 30d]",
		Short: "Open a case; it needs a second admin's approval before searches may run under it",
		Long: `Open a case. --from is inclusive, --to exclusive (as in search): --from 2026-11-01 --to 2026-12-01
is November. Times: RFC 3339, a date, or relative (-7d). --scope is a query (search syntax,
e.g. 'domain:*.shop.example.nl') AND-ed with every search under the case. --expires counts from
now (default cases.default_expires, at most cases.max_expires).`,
		Example: `  retentiond case open --id INC-42 --title "Leak at shop" --reason "customer data offered for sale" \
    --from 2026-11-01 --to 2026-12-01 --scope 'domain:*.shop.example.nl' --expires 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v cases.View
			if err := caseJSON(&c, http.MethodPost, "/api/v1/cases", nil, o, &v); err != nil {
				return err
			}
			return printCase(cmd.OutOrStdout(), v, asJSON, fmt.Sprintf("opened case %s; a different admin approves it with: retentiond case approve %s\n", v.ID, v.ID))
		},
	}
	addClientFlags(cmd, &c)
	fl := cmd.Flags()
	fl.StringVar(&o.ID, "id", "", "case id, e.g. INC-42 (required)")
	fl.StringVar(&o.Title, "title", "", "short title (required)")
	fl.StringVar(&o.Reason, "reason", "", "why the data must be consulted (required)")
	fl.StringVar(&o.From, "from", "", "start of the time range the case may see, inclusive (required)")
	fl.StringVar(&o.To, "to", "", "end of the time range, exclusive (required)")
	fl.StringVar(&o.Scope, "scope", "", "query AND-ed with every search under the case")
	fl.StringVar(&o.Expires, "expires", "", "how long the case lasts, e.g. 30d or 72h (default cases.default_expires)")
	fl.BoolVar(&asJSON, "json", false, "print the case as JSON")
	for _, f := range []string{"id", "title", "reason", "from", "to"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newCaseApproveCmd() *cobra.Command {
	var c apiClient
	var a cases.ApproveRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approve ID [--emergency --justification TEXT]",
		Short: "Approve a case opened by another admin (or your own, in an emergency)",
		Long: `Approve a pending case. The approving token must not be the one that opened it (four-eyes).
In an emergency (the 3 a.m. incident) the opener may approve alone with --emergency and a
--justification: that is allowed, written to the audit log as an emergency approval, logged at
warn level, counted in retentiond_cases_emergency_approvals_total, and the alert
RetentiondCaseEmergencyApproval asks someone to review it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.Emergency && strings.TrimSpace(a.Justification) == "" {
				return &exitError{code: 2, err: errors.New("--emergency needs --justification: say why this cannot wait for a second admin")}
			}
			var v cases.View
			if err := caseJSON(&c, http.MethodPost, casePath(args[0], "/approve"), nil, a, &v); err != nil {
				return err
			}
			msg := fmt.Sprintf("approved case %s: searches may run under it until %s\n", v.ID, v.ExpiresAt.Format(time.RFC3339))
			if v.Emergency {
				msg = "EMERGENCY " + msg + "this self-approval is audited and alerted; it will be reviewed\n"
			}
			return printCase(cmd.OutOrStdout(), v, asJSON, msg)
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().BoolVar(&a.Emergency, "emergency", false, "approve your own case (break-glass; audited and alerted)")
	cmd.Flags().StringVar(&a.Justification, "justification", "", "with --emergency: why it cannot wait for a second admin")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the case as JSON")
	return cmd
}

func newCaseCloseCmd() *cobra.Command {
	var c apiClient
	var cl cases.CloseRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "close ID [--reason TEXT]",
		Short: "Close a case: no more searches run under it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v cases.View
			if err := caseJSON(&c, http.MethodPost, casePath(args[0], "/close"), nil, cl, &v); err != nil {
				return err
			}
			return printCase(cmd.OutOrStdout(), v, asJSON, fmt.Sprintf("closed case %s\n", v.ID))
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().StringVar(&cl.Reason, "reason", "", "why the case is closed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the case as JSON")
	return cmd
}

func newCaseListCmd() *cobra.Command {
	var c apiClient
	var state string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--state open|pending|approved|closed|expired|all]",
		Short: "List cases (default: open ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct {
				Cases []cases.View `json:"cases"`
			}
			if err := caseJSON(&c, http.MethodGet, "/api/v1/cases", url.Values{"state": {state}}, nil, &ans); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(ans.Cases)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSEARCHABLE\tFROM\tTO\tEXPIRES\tOPENED BY\tAPPROVED BY\tTITLE")
			for _, v := range ans.Cases {
				approved := v.ApprovedBy
				if v.Emergency {
					approved += " (emergency)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.State, v.Searchable,
					v.From.Format(time.RFC3339), v.To.Format(time.RFC3339), v.ExpiresAt.Format(time.RFC3339),
					printable(v.OpenedBy), printable(approved), printable(v.Title))
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().StringVar(&state, "state", "open", "open (pending and approved), pending, approved, closed, expired or all")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cases as JSON")
	return cmd
}

func newCaseShowCmd() *cobra.Command {
	var c apiClient
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a case, its events and the searches made under it (from the audit log)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v cases.View
			if err := caseJSON(&c, http.MethodGet, casePath(args[0]), nil, nil, &v); err != nil {
				return err
			}
			var trail struct {
				Lines []map[string]any `json:"lines"`
			}
			trailErr := caseJSON(&c, http.MethodGet, casePath(args[0], "/audit"), nil, nil, &trail)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"case": v, "audit": trail.Lines})
			}
			if err := printCase(out, v, false, ""); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nAudit trail (registry events and searches under the case):")
			if trailErr != nil {
				fmt.Fprintf(out, "  not shown: %v\n", trailErr)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tTOKEN\tSTATUS\tCOUNT\tQUERY\tFROM\tTO\tREASON/ERROR")
			for _, l := range trail.Lines {
				s := func(k string) string {
					if x, ok := l[k]; ok {
						return printable(fmt.Sprint(x))
					}
					return ""
				}
				event := s("outcome")
				if s("event") == "search" {
					event = s("endpoint") + " " + event
				} else {
					event = "case " + event
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s("seq"), s("time"), event, s("token"),
					s("status"), s("count"), strconv.Quote(s("query")), s("from"), s("to"), strings.TrimSpace(s("reason")+" "+s("error")))
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the case and its audit lines as JSON")
	return cmd
}

// printCase prints a case for a person (msg first), or as JSON.
func printCase(out io.Writer, v cases.View, asJSON bool, msg string) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	fmt.Fprint(out, msg)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s\t%s\n", k, printable(val)) }
	row("id", v.ID)
	row("title", v.Title)
	row("state", fmt.Sprintf("%s (searchable: %t)", v.State, v.Searchable))
	row("reason", v.Reason)
	row("range", fmt.Sprintf("[%s, %s)", v.From.Format(time.RFC3339), v.To.Format(time.RFC3339)))
	if v.Scope != "" {
		row("scope", v.Scope)
	}
	row("opened", fmt.Sprintf("%s by %s", v.OpenedAt.Format(time.RFC3339), who(v.OpenedBy)))
	row("expires", v.ExpiresAt.Format(time.RFC3339))
	if v.ApprovedAt != nil {
		a := fmt.Sprintf("%s by %s", v.ApprovedAt.Format(time.RFC3339), who(v.ApprovedBy))
		if v.Emergency {
			a += " (EMERGENCY, justification: " + v.Justification + ")"
		}
		row("approved", a)
	}
	if v.EndedAt != nil {
		e := v.EndedAt.Format(time.RFC3339)
		if v.State == cases.StateClosed {
			e += " closed by " + who(v.ClosedBy)
			if v.CloseReason != "" {
				e += ": " + v.CloseReason
			}
		} else {
			e += " " + string(v.State)
		}
		row("ended", e)
	}
	for _, e := range v.Events {
		by := "by " + who(e.Token)
		if e.Outcome == "expired" {
			by = "(its expiry passed)"
		}
		row("event", fmt.Sprintf("audit #%d %s %s %s", e.Seq, e.Time.Format(time.RFC3339), e.Outcome, by))
	}
	return tw.Flush()
}

func who(name string) string {
	if name == "" {
		return "(development mode)"
	}
	return name
}
