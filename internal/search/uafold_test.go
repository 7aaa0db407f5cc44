package search

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestUserAgentASCIIFold: a user-agent term tested against a stored value
// without lower-casing a copy (matchASCIIFold) answers exactly as the
// lower-cased copy does, for every operator, negated or not, on random
// mixed-case ASCII values and on values outside ASCII (which take the
// copy).
func TestUserAgentASCIIFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	alphabet := []string{"a", "B", "z", "Z", "/", " ", "5", ".", "(", "É", "ß", "K"}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	values := []string{"", "Mozilla/5.0 (X11; Linux x86_64)", "sqlmap/1.7", "SQLMAP", "curl/8.5.0", "Ünïcode Agent"}
	for range 300 {
		values = append(values, word(rng.IntN(12)))
	}
	checked := 0
	for range 400 {
		core := word(1 + rng.IntN(3))
		if strings.Contains(core, "*") {
			continue
		}
		q := []string{core, core + "*", "*" + core, "*" + core + "*"}[rng.IntN(4)]
		if rng.IntN(4) == 0 {
			q = "-ua:" + q
		} else {
			q = "ua:" + q
		}
		pq, err := Parse(q)
		if err != nil {
			continue
		}
		terms := pq.Terms
		if len(terms) != 1 {
			t.Fatalf("%q parsed into %d terms", q, len(terms))
		}
		term := &terms[0]
		for _, v := range values {
			want := term.matchLowered(strings.ToLower(v))
			if got := term.matchString(v); got != want {
				t.Fatalf("%s on %q: %v, lower-cased copy says %v", q, v, got, want)
			}
			checked++
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d checks", checked)
	}
}

// BenchmarkUserAgentTerm tests "ua:*sqlmap*" against every user agent of
// the 5M-record dataset's ten dictionaries, as the planner does for every
// segment: through matchString (no copy for ASCII values) and, as the
// same-run baseline, through a lower-cased copy of each entry.
func BenchmarkUserAgentTerm(b *testing.B) {
	src := benchData(b, 10, 5_000_000)
	var uas []string
	for _, d := range src.days {
		for _, sr := range d.Segments {
			uas = append(uas, sr.UserAgents()...)
		}
	}
	pq, err := Parse("ua:*sqlmap*")
	if err != nil {
		b.Fatal(err)
	}
	term := &pq.Terms[0]
	run := func(b *testing.B, match func(string) bool) {
		n := 0
		for b.Loop() {
			n = 0
			for _, v := range uas {
				if match(v) {
					n++
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(uas)), "ns/entry")
		b.ReportMetric(float64(n), "matches")
	}
	b.Run("fold", func(b *testing.B) { run(b, term.matchString) })
	b.Run("baseline_lowercase_copy", func(b *testing.B) {
		run(b, func(v string) bool { return term.matchLowered(strings.ToLower(v)) })
	})
}
