package loggen

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

func generate(opts Options, format func([]byte, *record.Record) []byte) []byte {
	g := New(opts)
	var b []byte
	for !g.Done() {
		r := g.Next()
		b = format(b, &r)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format func([]byte, *record.Record) []byte
	}{
		{"ndjson", AppendNDJSON},
		{"combined", AppendCombined},
		{"vhost_combined", AppendVhostCombined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Seed: 7, Total: 20_000, Days: 3}
			a, b := generate(opts, tc.format), generate(opts, tc.format)
			if !bytes.Equal(a, b) {
				t.Fatal("same seed produced different output")
			}
			opts.Seed = 8
			if c := generate(opts, tc.format); bytes.Equal(a, c) {
				t.Fatal("different seeds produced the same output")
			}
		})
	}
}

func TestRecordsValidAndOrdered(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"defaults-small", Options{Seed: 1, Total: 50_000}},
		{"ten-days", Options{Seed: 2, Total: 30_000, Days: 10, Start: time.Date(2025, 3, 30, 13, 0, 0, 0, time.FixedZone("CEST", 7200))}},
		{"dense", Options{Seed: 3, Total: 200_000, Days: 1, Vhosts: 10, UserAgents: 3, Visitors: 5}},
		{"tiny-tables", Options{Seed: 4, Total: 1000, Vhosts: 1, UserAgents: 1, Visitors: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(tc.opts)
			start := record.Day(tc.opts.Start)
			if tc.opts.Start.IsZero() {
				start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			days := max(tc.opts.Days, 1)
			end := start.AddDate(0, 0, days)
			var prev time.Time
			n := 0
			for !g.Done() {
				r := g.Next()
				n++
				orig := r
				if err := r.Normalize(); err != nil {
					t.Fatalf("record %d does not normalise: %v (%+v)", n, err, orig)
				}
				if r != orig {
					t.Fatalf("record %d changed by Normalize: %+v -> %+v", n, orig, r)
				}
				if r.Time.Before(prev) {
					t.Fatalf("record %d: time %v before previous %v", n, r.Time, prev)
				}
				if r.Time.Before(start) || !r.Time.Before(end) {
					t.Fatalf("record %d: time %v outside [%v, %v)", n, r.Time, start, end)
				}
				prev = r.Time
			}
			if n != tc.opts.Total {
				t.Fatalf("produced %d records, want %d", n, tc.opts.Total)
			}
		})
	}
}

func TestDistribution(t *testing.T) {
	const total = 200_000
	g := New(Options{Seed: 1, Total: total})
	var v6 int
	domains := map[string]int{}
	ips := map[string]bool{}
	uas := map[string]int{}
	var probesSeen, assets, queries int
	for !g.Done() {
		r := g.Next()
		if r.IP.Is6() {
			v6++
		}
		domains[r.Domain]++
		ips[r.IP.String()] = true
		uas[r.UserAgent]++
		if probeSet[r.Path] {
			probesSeen++
		}
		if isAsset(r.Path) {
			assets++
		}
		if strings.Contains(r.Path, "?") {
			queries++
		}
	}
	frac := func(n int) float64 { return float64(n) / total }
	checks := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"ipv6 fraction", frac(v6), 0.12, 0.40},
		{"distinct vhosts", float64(len(domains)), 1500, 5000},
		{"distinct visitor IPs", float64(len(ips)), 5000, 100_000},
		{"distinct user agents", float64(len(uas)), 200, 1500},
		{"probe fraction", frac(probesSeen), 0.005, 0.15},
		{"asset fraction", frac(assets), 0.2, 0.8},
		{"query-string fraction", frac(queries), 0.15, 0.7},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got < c.min || c.got > c.max {
				t.Errorf("%s = %.3f, want within [%.3f, %.3f]", c.name, c.got, c.min, c.max)
			}
		})
	}
	// Zipf popularity: the busiest vhost sees far more than an average one.
	busiest := 0
	for _, n := range domains {
		busiest = max(busiest, n)
	}
	if avg := total / len(domains); busiest < 20*avg {
		t.Errorf("busiest vhost has %d records, average %d: popularity is not skewed", busiest, avg)
	}
}

func TestGoldenNDJSON(t *testing.T) {
	got := generate(Options{Seed: 1, Total: 20}, AppendNDJSON)
	testkit.Golden(t, filepath.Join("testdata", "seed1_first20.ndjson"), got)
}

// TestNDJSONMatchesEncodingJSON checks the hand-written encoder against
// encoding/json, including hostile strings the generator never makes.
func TestNDJSONMatchesEncodingJSON(t *testing.T) {
	g := New(Options{Seed: 5, Total: 5000})
	recs := make([]record.Record, 0, 5003)
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	// Hostile values the generator never makes but the encoder must handle.
	base := recs[0]
	for _, s := range []string{"a\"b\\c<d>&e", "\x00\x01\x1f\x7f\b\f\n\r\t", "bad \xff utf8 \xc3", "line\u2028sep\u2029 é 日本"} {
		r := base
		r.Path, r.UserAgent = s, s
		recs = append(recs, r)
	}
	type row struct {
		Time      string `json:"time"`
		Domain    string `json:"domain"`
		Path      string `json:"path"`
		UserAgent string `json:"user_agent"`
		IP        string `json:"ip"`
	}
	for i := range recs {
		r := &recs[i]
		got := AppendNDJSON(nil, r)
		// The API's layout: fixed-width millisecond times, no HTML
		// escaping (see record.AppendNDJSON).
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(row{r.Time.UTC().Format(record.TimeLayout), r.Domain, r.Path, r.UserAgent, r.IP.String()}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
}

func TestCombinedEscaping(t *testing.T) {
	r := record.Record{
		Time:      time.Date(2026, 11, 21, 16, 27, 8, 123e6, time.UTC),
		Domain:    "www.bakkerij-jansen.nl",
		Path:      `/search?q="><script>\x</script>`,
		UserAgent: `() { :;}; /bin/bash -c "id"` + "\t",
	}
	r.IP, _ = record.ParseIP("2001:db8::7")
	tests := []struct {
		name   string
		format func([]byte, *record.Record) []byte
		prefix string
	}{
		{"combined", AppendCombined, `2001:db8::7 - - [21/Nov/2026:16:27:08 +0000] "GET /search?q=\"><script>\\x</script> HTTP/`},
		{"vhost_combined", AppendVhostCombined, `www.bakkerij-jansen.nl:443 2001:db8::7 - - [21/Nov/2026:16:27:08 +0000] "GET /search?q=\"><script>\\x</script> HTTP/`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := string(tc.format(nil, &r))
			if !strings.HasPrefix(line, tc.prefix) {
				t.Fatalf("line %q\nwant prefix %q", line, tc.prefix)
			}
			if want := `"() { :;}; /bin/bash -c \"id\"\t"` + "\n"; !strings.HasSuffix(line, want) {
				t.Fatalf("line %q\nwant suffix %q", line, want)
			}
			if strings.Count(line, "\n") != 1 {
				t.Fatalf("line %q has an embedded newline", line)
			}
		})
	}
	r.UserAgent = ""
	if line := string(AppendCombined(nil, &r)); !strings.HasSuffix(line, "\"-\"\n") {
		t.Fatalf("empty user agent not written as \"-\": %q", line)
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(Options{Seed: 1, Total: benchTotal})
	b.ResetTimer()
	for b.Loop() {
		_ = g.Next()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkNDJSON(b *testing.B) {
	g := New(Options{Seed: 1, Total: benchTotal})
	var buf []byte
	var n int
	b.ResetTimer()
	for b.Loop() {
		r := g.Next()
		buf = AppendNDJSON(buf[:0], &r)
		n += len(buf)
	}
	b.SetBytes(int64(n / max(b.N, 1)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkCombined(b *testing.B) {
	g := New(Options{Seed: 1, Total: benchTotal})
	var buf []byte
	b.ResetTimer()
	for b.Loop() {
		r := g.Next()
		buf = AppendCombined(buf[:0], &r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchTotal is a Total the benchmarks never reach: 1<<62 where int has 64
// bits, math.MaxInt on 32-bit platforms (where 1<<62 does not compile).
const benchTotal = min(1<<62, math.MaxInt)
