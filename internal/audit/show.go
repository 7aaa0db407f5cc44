package audit

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Show writes, in a table, every line of dir whose case is caseID (exact
// match), oldest first: the searches made under it and, for a registered
// case, its story (opened, approved, closed, expired; refused attempts). It reads the files as they are; run Verify to know
// whether they can be trusted. Client-supplied text is printed with control
// characters escaped, so a hostile reason cannot drive the terminal.
func Show(dir string, caseID string, w io.Writer) error {
	return show(dir, caseID, w, false)
}

// ShowJSON is Show writing the matching lines verbatim (JSON lines, with
// their hashes), for tools.
func ShowJSON(dir string, caseID string, w io.Writer) error {
	return show(dir, caseID, w, true)
}

func show(dir, caseID string, w io.Writer, raw bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !raw {
		fmt.Fprintln(tw, "SEQ\tTIME\tOUTCOME\tENDPOINT\tTOKEN\tSOURCE\tSTATUS\tCOUNT\tSECONDS\tQUERY\tFROM\tTO\tREASON")
	}
	err := eachCaseLine(dir, caseID, func(l *line, raw1 []byte) error {
		if raw {
			_, err := fmt.Fprintf(w, "%s\n", raw1)
			return err
		}
		count, secs := "", ""
		if l.Count != nil {
			count = strconv.FormatInt(*l.Count, 10)
		}
		if l.Duration != nil {
			secs = strconv.FormatFloat(*l.Duration, 'f', 3, 64)
		}
		status := ""
		if l.Status != 0 {
			status = strconv.Itoa(l.Status)
		}
		outcome := l.Outcome
		if l.Event == EventCase {
			outcome = "case " + outcome
		}
		if l.Ref != 0 {
			outcome += " (#" + strconv.FormatInt(l.Ref, 10) + ")"
		}
		reason := l.Reason
		if l.Error != "" {
			reason = strings.TrimSpace(reason + " [" + l.Error + "]")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			l.Seq, l.Time, outcome, sanitize(l.Endpoint), sanitize(l.Token), sanitize(l.Source), status, count, secs,
			strconv.Quote(l.Query), sanitize(l.From), sanitize(l.To), strconv.Quote(reason))
		return nil
	})
	if err != nil || raw {
		return err
	}
	return tw.Flush()
}

// CaseLines returns, oldest first, every line of dir that concerns caseID
// (exact match): the case registry's events and the searches made under
// it, each verbatim (JSON with its hash). Lines in files already purged by
// audit retention are gone; a case's current state never depends on them
// (internal/cases keeps it in its own file).
func CaseLines(dir, caseID string) ([][]byte, error) {
	var out [][]byte
	err := eachCaseLine(dir, caseID, func(_ *line, raw []byte) error {
		out = append(out, append([]byte(nil), raw...))
		return nil
	})
	return out, err
}

// eachCaseLine calls fn for every intact search or case line of dir whose
// case is caseID, in chain order. Lines that do not parse are skipped:
// Verify is what reports them.
func eachCaseLine(dir, caseID string, fn func(l *line, raw []byte) error) error {
	return each(dir, func(l *line, raw []byte) error {
		if l.Case != caseID || (l.Event != EventSearch && l.Event != EventCase) {
			return nil
		}
		return fn(l, raw)
	})
}
