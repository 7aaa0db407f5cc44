package main

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/retentiond/retentiond/internal/search"
)

func init() { register(newSearchCmd) }

type searchFlags struct {
	format, from, to, order, statsBy, caseID, reason string
	evidence                                         string
	limit, top                                       int
	count                                            bool
}

func newSearchCmd() *cobra.Command {
	var c apiClient
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search [flags] QUERY",
		Short: "Search the records of a running daemon (audited: --case and --reason are required)",
		Long: `Search the stored records through the daemon's API, so that every search is authorised and audited.

QUERY terms separated by spaces (or AND) must all hold; OR holds when either side does (AND binds
tighter); parentheses group, -term and -( ... ) negate; values with spaces go in double quotes:
  ip:203.0.113.7   ip:203.0.113.0/24   ip:2001:db8::/48
  domain:shop.example.nl   domain:*.example.nl
  path:/wp-login.php   path:/wp-admin/*   path:*passwd*
  ua:*sqlmap*   path~"^/wp-"   ua~"(?i)bot"
  (ip:203.0.113.7 OR ip:198.51.100.0/24) -path:/robots.txt

Times for --from/--to: RFC 3339, a date (2026-11-20) or relative (-24h, -7d); from is inclusive,
to exclusive; without --from the whole retention is searched.

A query that starts with a negated term needs -- before it: retentiond search --case X --reason Y -- '-ua:*bot*'.

On a terminal results print as a table, otherwise as NDJSON (--format overrides). A search cut by
--limit says so on stderr ("1000 of 4,112 shown"); other output forms also print there the SHA-256
of the bytes received, which the audit log's done line for the search holds too.
The token comes from --token or RETENTIOND_TOKEN. See docs/search.md.`,
		Example: `  retentiond search --case INC-42 --reason "leak report" --from -7d 'ip:203.0.113.0/24'
  retentiond search --case INC-42 --reason "leak report" --count 'domain:*.example.nl path:/wp-admin/*'
  retentiond search --case INC-42 --reason "leak report" --stats-by user_agent 'path:/wp-login.php'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSearch(cmd.OutOrStdout(), cmd.ErrOrStderr(), &c, &f, args[0])
		},
	}
	addClientFlags(cmd, &c)
	fl := cmd.Flags()
	fl.StringVar(&f.caseID, "case", "", "incident id this search serves (required)")
	fl.StringVar(&f.reason, "reason", "", "why this search is needed (required)")
	fl.StringVar(&f.format, "format", "", "table, ndjson, csv or combined (default: table on a terminal, ndjson otherwise)")
	fl.StringVar(&f.from, "from", "", "start of the time range, inclusive (default: the whole retention)")
	fl.StringVar(&f.to, "to", "", "end of the time range, exclusive (default: now)")
	fl.StringVar(&f.order, "order", "asc", "asc (oldest first) or desc")
	fl.IntVar(&f.limit, "limit", 1000, "maximum records to return; 0 for all")
	fl.BoolVar(&f.count, "count", false, "print only the number of matching records")
	fl.StringVar(&f.statsBy, "stats-by", "", "print the top values of ip, domain, path or user_agent, or the timeline by minute, hour or day")
	fl.IntVar(&f.top, "top", 10, "with --stats-by a field: how many values (0 for all); a timeline always has every bucket")
	fl.StringVar(&f.evidence, "evidence", "", "write every matching record (no limit) as a signed evidence bundle to this zip file; check it with 'retentiond evidence verify'")
	return cmd
}

func runSearch(out, errOut io.Writer, c *apiClient, f *searchFlags, query string) error {
	if strings.TrimSpace(f.caseID) == "" || strings.TrimSpace(f.reason) == "" {
		return &exitError{code: 2, err: fmt.Errorf("--case and --reason are required: every search is audited with the incident it serves and why")}
	}
	q := url.Values{"q": {query}, "case": {f.caseID}, "reason": {f.reason}}
	if f.from != "" {
		q.Set("from", f.from)
	}
	if f.to != "" {
		q.Set("to", f.to)
	}
	switch {
	case f.evidence != "":
		resp, err := c.do("GET", "/api/v1/evidence", q, nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := saveEvidence(resp.Body, f.evidence)
		if err != nil {
			return err
		}
		fmt.Fprintf(errOut, "wrote %s (%d bytes)\n", f.evidence, n)
		return runEvidenceVerify(errOut, f.evidence, "", "")
	case f.count:
		return searchJSON(out, errOut, c, "/api/v1/count", q, func(v map[string]any) {
			fmt.Fprintln(out, jsonNumber(v["count"]))
		})
	case f.statsBy != "":
		q.Set("by", f.statsBy)
		q.Set("top", strconv.Itoa(f.top))
		return searchJSON(out, errOut, c, "/api/v1/stats", q, func(v map[string]any) {
			// An approximate answer shows each count's error in its own
			// column and says so below the table: an investigator must
			// never take an upper bound for an exact count.
			approx, _ := v["approximate"].(bool)
			truncated, _ := v["truncated"].(bool)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if approx {
				fmt.Fprintf(tw, "COUNT\tERROR\t%s\n", strings.ToUpper(f.statsBy))
			} else {
				fmt.Fprintf(tw, "COUNT\t%s\n", strings.ToUpper(f.statsBy))
			}
			rows, _ := v["top"].([]any)
			timeline := f.statsBy == "minute" || f.statsBy == "hour" || f.statsBy == "day"
			for i := 0; i < len(rows); i++ {
				r := rows[i]
				m, _ := r.(map[string]any)
				if approx {
					e := jsonNumber(m["error"])
					if m["error"] == nil {
						e = "0"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", jsonNumber(m["count"]), e, printable(fmt.Sprint(m["key"])))
					continue
				}
				if timeline && jsonNumber(m["count"]) == "0" {
					// A run of empty buckets is one line that names its
					// first and last bucket: every bucket is accounted for.
					j := i
					for j+1 < len(rows) && jsonNumber(rows[j+1].(map[string]any)["count"]) == "0" {
						j++
					}
					if j-i >= 2 {
						last, _ := rows[j].(map[string]any)
						fmt.Fprintf(tw, "0\t%s … %s (%d empty %s buckets)\n", printable(fmt.Sprint(m["key"])),
							printable(fmt.Sprint(last["key"])), j-i+1, f.statsBy)
						i = j
						continue
					}
				}
				fmt.Fprintf(tw, "%s\t%s\n", jsonNumber(m["count"]), printable(fmt.Sprint(m["key"])))
			}
			if approx {
				fmt.Fprintf(tw, "%s\t\t(total, exact)\n", jsonNumber(v["total"]))
			} else {
				fmt.Fprintf(tw, "%s\t(total)\n", jsonNumber(v["total"]))
			}
			tw.Flush()
			if approx {
				fmt.Fprintf(out, "approximate: too many distinct values to count exactly (search.stats_max_groups is %s); "+
					"each true count lies between COUNT-ERROR and COUNT\n", jsonNumber(v["max_groups"]))
			}
			if truncated {
				fmt.Fprintf(out, "truncated: only the %d most frequent values are listed\n", len(rows))
			}
			if groups, err := strconv.ParseInt(jsonNumber(v["groups"]), 10, 64); err == nil && !approx && !timeline &&
				int64(len(rows)) < groups {
				fmt.Fprintf(out, "%s of %s values shown; --top 0 for all\n", thousands(int64(len(rows))), thousands(groups))
			}
		})
	}
	format := f.format
	if format == "" {
		format = "ndjson"
		if fd, ok := out.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			format = "table"
		}
	}
	wire := format
	if format == "table" {
		wire = "ndjson"
	}
	q.Set("format", wire)
	q.Set("limit", strconv.Itoa(f.limit))
	q.Set("order", f.order)
	resp, err := c.do("GET", "/api/v1/search", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if format != "table" {
		digest := sha256.New()
		n, err := io.Copy(out, io.TeeReader(resp.Body, digest))
		warnSkipped(errOut, resp.Header, resp.Trailer) // trailers are read with the body
		if err == nil {
			warnTruncated(errOut, resp.Trailer)
			fmt.Fprintf(errOut, "sha256 %x of the %d bytes received (the audit log's done line holds the same)\n", digest.Sum(nil), n)
		}
		return cmp.Or(err, endedByError(resp.Trailer))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tIP\tDOMAIN\tPATH\tUSER AGENT")
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 256<<10), 1<<20)
	n := 0
	for sc.Scan() {
		var r struct{ Time, Domain, Path, UserAgent, IP string }
		var raw map[string]string
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return fmt.Errorf("read result row %d: %w", n+1, err)
		}
		if raw["error"] != "" && raw["time"] == "" {
			continue // the answer ended early; the trailer says why
		}
		r.Time, r.Domain, r.Path, r.UserAgent, r.IP = raw["time"], raw["domain"], raw["path"], raw["user_agent"], raw["ip"]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Time, r.IP, printable(r.Domain), printable(r.Path), printable(r.UserAgent))
		n++
	}
	tw.Flush()
	if err := sc.Err(); err != nil {
		fmt.Fprintf(errOut, "%d records\n", n)
		return err
	}
	io.Copy(io.Discard, resp.Body) // reach the trailers
	if !warnTruncated(errOut, resp.Trailer) {
		fmt.Fprintf(errOut, "%d records\n", n)
	}
	warnSkipped(errOut, resp.Header, resp.Trailer)
	return endedByError(resp.Trailer)
}

// warnTruncated says on w, and reports, when the answer stopped at its
// limit while more records match (the daemon's search.TruncatedTrailer):
// an export without every match must never pass for the whole result.
// Read the body first.
func warnTruncated(w io.Writer, trailer http.Header) bool {
	v := trailer.Get(search.TruncatedTrailer)
	if v == "" {
		return false
	}
	var t search.Truncation
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		fmt.Fprintf(w, "the answer stopped at its limit while more records match; --limit 0 for all\n")
		return true
	}
	if t.Total > 0 {
		fmt.Fprintf(w, "%s of %s records shown; --limit 0 for all\n", thousands(int64(t.Limit)), thousands(t.Total))
	} else {
		fmt.Fprintf(w, "%s of more than %s records shown (the total was not counted: it needs a full scan); --limit 0 for all\n",
			thousands(int64(t.Limit)), thousands(int64(t.Limit)))
	}
	return true
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// endedByError returns the error that ended a search answer early (the
// daemon's search.ErrorTrailer), so that the command fails instead of
// presenting the rows before it as the whole answer. Read the body first.
func endedByError(trailer http.Header) error {
	if msg := trailer.Get(search.ErrorTrailer); msg != "" {
		return fmt.Errorf("the answer is incomplete: %s", msg)
	}
	return nil
}

// warnSkipped prints a warning for every damaged segment file the answer
// left out (the search.SkippedHeader values of its header and trailer), so
// that an investigator never takes a partial answer for a complete one.
func warnSkipped(w io.Writer, hdrs ...http.Header) {
	seen := map[string]bool{}
	for _, h := range hdrs {
		for _, v := range h.Values(search.SkippedHeader) {
			var f search.SkippedFile
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				f = search.SkippedFile{File: v, Offset: -1}
			}
			if seen[f.Peer+" "+f.File] {
				continue
			}
			seen[f.Peer+" "+f.File] = true
			switch {
			case f.File == "":
				fmt.Fprintf(w, "warning: cluster peer %s %s: its records not yet in the bucket are missing from this answer\n",
					printable(f.Peer), printable(f.Reason))
			case f.Peer != "":
				fmt.Fprintf(w, "warning: damaged segment file %s on cluster peer %s (offset %d: %s) was skipped: its records are missing from this answer\n",
					f.File, printable(f.Peer), f.Offset, printable(f.Reason))
			default:
				fmt.Fprintf(w, "warning: damaged segment file %s (offset %d: %s) was skipped: its records are missing from this answer\n",
					f.File, f.Offset, printable(f.Reason))
			}
		}
	}
}

func searchJSON(out, errOut io.Writer, c *apiClient, path string, q url.Values, show func(map[string]any)) error {
	resp, err := c.do("GET", path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	show(v)
	warnSkipped(errOut, resp.Header)
	return nil
}

func jsonNumber(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return fmt.Sprint(v)
}

// printable keeps terminal control characters in stored data (a scanner's
// user agent can carry escape sequences) from acting on the investigator's
// terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}
