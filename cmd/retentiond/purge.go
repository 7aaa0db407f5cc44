package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/record"
)

func init() { register(newPurgeCmd) }

// newPurgeCmd is `retentiond purge [--dry-run]`. It asks the running daemon
// to purge, rather than deleting files itself, so that a purge never races
// the daemon's own scheduled run or a running search, and goes through the
// daemon's authentication.
func newPurgeCmd() *cobra.Command {
	var (
		c                     apiClient
		dryRun, force, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "purge [--dry-run]",
		Short: "Destroy the days that are past the retention now, or list them with --dry-run",
		Long: `Purge asks the running daemon to destroy, now, every UTC day that is past the retention
(day D is destroyed once now >= start of D + retention + 1 day). The daemon does the same on its
schedule (purge.schedule) and at start-up (purge.on_start); this command is for checking and for
catching up by hand.

--dry-run lists what would be destroyed (day, records, bytes) and changes nothing.
--force overrides purge.max_days_per_run for this one run; check the clock first.
Needs an admin token (--token or RETENTIOND_TOKEN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"dry_run": {strconv.FormatBool(dryRun)}}
			if force {
				q.Set("force", "true")
			}
			resp, err := c.do(http.MethodPost, "/api/v1/admin/purge", q, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return fmt.Errorf("read purge report: %w", err)
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var rep purge.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				return fmt.Errorf("decode purge report: %w", err)
			}
			return printPurgeReport(cmd.OutOrStdout(), rep)
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list the days that would be destroyed")
	cmd.Flags().BoolVar(&force, "force", false, "ignore purge.max_days_per_run for this run (after checking the clock)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON report instead of a table")
	return cmd
}

// printPurgeReport writes the report as a table of day, records and bytes
// with a total line.
func printPurgeReport(w io.Writer, rep purge.Report) error {
	verb := "Destroyed"
	if rep.DryRun {
		verb = "Would destroy"
	}
	p := purge.Policy{Retention: rep.Retention}
	if len(rep.Days) == 0 {
		fmt.Fprintf(w, "Nothing has expired (retention %s, now %s).\n", rep.Retention, rep.Now.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "%s %d %s (retention %s, now %s):\n\n", verb, len(rep.Days), purgePlural(len(rep.Days), "day", "days"),
			rep.Retention, rep.Now.UTC().Format(time.RFC3339))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DAY\tEXPIRED AT\tRECORDS\tBYTES")
		for _, d := range rep.Days {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", record.DayString(d.Day),
				p.ExpiresAt(d.Day).Format(time.RFC3339), d.Records, purgeBytes(d.Bytes))
		}
		fmt.Fprintf(tw, "TOTAL\t\t%d\t%s\n", rep.Records, purgeBytes(rep.Bytes))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	printRemote(w, rep.Remote)
	for _, e := range rep.Extra {
		fmt.Fprintf(w, "%s: %d %s, %s\n", e.Name, e.Items, purgePlural(int(e.Items), "item", "items"), purgeBytes(e.Bytes))
	}
	if !rep.NextExpiry.IsZero() {
		fmt.Fprintf(w, "Next day expires at %s.\n", rep.NextExpiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// printRemote writes what the run did in the bucket: each destroyed day
// with its proof, or why the bucket was left alone, or the failure and the
// expired days it left there.
func printRemote(w io.Writer, r *purge.RemoteReport) {
	if r == nil {
		return
	}
	switch r.Skipped {
	case purge.SkipLeaseHeld:
		fmt.Fprintf(w, "Bucket %s: left alone, node %s holds the purge lease (until %s).\n", r.Store, r.By,
			r.At.UTC().Format(time.RFC3339))
	case purge.SkipAlreadyDone:
		fmt.Fprintf(w, "Bucket %s: already purged for this cutoff by node %s at %s.\n", r.Store, r.By,
			r.At.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "Bucket %s: destroyed %d %s, %d objects and versions, %s, %d %s.\n", r.Store,
			len(r.Days), purgePlural(len(r.Days), "day", "days"), r.Objects, purgeBytes(r.Bytes), r.Markers,
			purgePlural(int(r.Markers), "delete marker", "delete markers"))
		for _, d := range r.Days {
			proof := "not verified"
			if d.Verified {
				proof = "listed again: empty"
			}
			fmt.Fprintf(w, "  %s  %d %s  %s  %s\n", record.DayString(d.Day), d.Objects, purgePlural(int(d.Objects), "object", "objects"),
				purgeBytes(d.Bytes), proof)
		}
	}
	if len(r.Held) > 0 {
		fmt.Fprintf(w, "Bucket: %d expired %s kept by legal holds.\n", len(r.Held), purgePlural(len(r.Held), "day", "days"))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Bucket purge FAILED: %s\n", r.Error)
	}
	if len(r.Remaining) > 0 {
		days := make([]string, 0, len(r.Remaining))
		for _, d := range r.Remaining {
			days = append(days, record.DayString(d))
		}
		fmt.Fprintf(w, "Expired days still in the bucket (the next run retries): %s\n", strings.Join(days, ", "))
	}
}

func purgePlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// purgeBytes shows a byte count in binary units ("12.3 MiB").
func purgeBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
