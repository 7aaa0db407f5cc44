package importer

import (
	"fmt"
	"io"
)

// Summary counts what an import did with every line it read.
type Summary struct {
	Files           int   // files imported completely
	Refused         int   // files refused as already imported
	Lines           int64 // lines read in this run (not counting skipped imported prefixes)
	Accepted        int64 // records the destination acknowledged
	Rejected        int64 // lines that did not become records, or records refused
	PastRetention   int64 // records skipped because their day is past retention
	AlreadyImported int64 // lines skipped because an earlier import covered them
	Blank           int64 // empty lines, ignored
	Retries         int64 // batches re-sent after back-pressure
	// Reasons groups the rejections, in order of first occurrence.
	Reasons []*Reason
	byText  map[string]*Reason
}

// Reason is one kind of rejection with a few examples (file:line: error).
type Reason struct {
	Reason   string
	Count    int64
	Examples []string
}

func (s *Summary) reject(reason, example string) {
	s.Rejected++
	if s.byText == nil {
		s.byText = map[string]*Reason{}
	}
	r := s.byText[reason]
	if r == nil {
		r = &Reason{Reason: reason}
		s.byText[reason] = r
		s.Reasons = append(s.Reasons, r)
	}
	r.Count++
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, example)
	}
}

// WriteText writes the summary for an operator. The examples quote the
// offending lines' values (shortened): the operator's own data, shown to the
// operator, never logged.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "imported %d file(s): %d lines read, %d records accepted, %d rejected, %d skipped as past retention",
		s.Files, s.Lines, s.Accepted, s.Rejected, s.PastRetention)
	if s.AlreadyImported > 0 {
		fmt.Fprintf(w, ", %d lines skipped as imported before", s.AlreadyImported)
	}
	if s.Blank > 0 {
		fmt.Fprintf(w, ", %d blank", s.Blank)
	}
	if s.Refused > 0 {
		fmt.Fprintf(w, "; %d file(s) refused as already imported", s.Refused)
	}
	fmt.Fprintln(w)
	for _, r := range s.Reasons {
		fmt.Fprintf(w, "  rejected %d: %s\n", r.Count, r.Reason)
		for _, e := range r.Examples {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
}
