package importer

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/ingest"
	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// The tests in this file run real log formats through the ingest parsers,
// as `retentiond import` does.

const apacheFixture = "../../../shared/data/apache_combined_2015.log"

func withIngest(domain string) func(*Options) {
	return func(o *Options) {
		o.Domain, o.Format, o.BatchSize = domain, "", DefaultBatchSize
	}
}

func readFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(apacheFixture)
	if err != nil {
		t.Skipf("fixture not available: %v", err)
	}
	return b
}

func mustIP(t *testing.T, s string) record.Record {
	t.Helper()
	ip, err := record.ParseIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return record.Record{IP: ip}
}

func TestImportApacheFixture(t *testing.T) {
	content := readFixture(t)
	// Spot checks, field by field, of lines chosen for their quirks: the
	// first line, a "-" user agent (44), a long referer that must be
	// dropped (25), a query string (10000).
	type spot struct {
		line                    int
		time                    string
		path, userAgent, ipAddr string
	}
	spots := []spot{
		{1, "2015-05-17T10:05:03Z", "/presentations/logstash-monitorama-2013/images/kibana-search.png",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36", "83.149.9.216"},
		{25, "2015-05-17T10:05:14Z", "/articles/dynamic-dns-with-dhcp/", "Mozilla/5.0 (X11; Linux x86_64; rv:25.0) Gecko/20100101 Firefox/25.0", "93.114.45.13"},
		{44, "2015-05-17T10:05:36Z", "/reset.css", "", "200.49.190.101"},
		{10000, "2015-05-20T21:05:15Z", "/blog/tags/puppet?flav=rss20", "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/", "46.105.14.53"},
	}
	for _, tc := range []struct{ name, compression string }{
		{"plain", ""}, {"gzip", "gzip"}, {"zstd", "zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := writeFile(t, filepath.Join(e.dir, "apache_combined_2015.log"), content, tc.compression)
			sink := &memSink{}
			sum, errs := e.run(sink, withIngest("semicomplete.com"), f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if len(sink.recs) != 10_000 || sum.Accepted != 10_000 || sum.Rejected != 0 || sum.Lines != 10_000 {
				var out bytes.Buffer
				sum.WriteText(&out)
				t.Fatalf("%d records stored; summary:\n%s", len(sink.recs), out.String())
			}
			for _, s := range spots {
				got := sink.recs[s.line-1]
				want := mustIP(t, s.ipAddr)
				want.Time, _ = time.Parse(time.RFC3339, s.time)
				want.Domain, want.Path, want.UserAgent = "semicomplete.com", s.path, s.userAgent
				if got != want {
					t.Errorf("line %d:\n got %+v\nwant %+v", s.line, got, want)
				}
			}

			// A second run is refused and adds nothing.
			_, errs = e.run(sink, withIngest("semicomplete.com"), f)
			if len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) || len(sink.recs) != 10_000 {
				t.Fatalf("second run: errors %v, %d records", errs, len(sink.recs))
			}
		})
	}
}

func TestImportApacheFixtureResume(t *testing.T) {
	content := readFixture(t)
	e := newEnv(t)
	f := writeFile(t, filepath.Join(e.dir, "apache.log.gz"), content, "gzip")
	var want []record.Record
	{
		ref := &memSink{}
		e2 := newEnv(t)
		if _, errs := e2.run(ref, withIngest("semicomplete.com"), f); len(errs) > 0 {
			t.Fatal(errs)
		}
		want = ref.recs
	}
	sink := &memSink{failAfter: 4}
	small := func(o *Options) { withIngest("semicomplete.com")(o); o.BatchSize = 700 }
	if _, errs := e.run(sink, small, f); len(errs) != 1 || !errors.Is(errs[0], errSinkDown) {
		t.Fatalf("first run: %v", errs)
	}
	if len(sink.recs) != 4*700 {
		t.Fatalf("first run stored %d records, want %d", len(sink.recs), 4*700)
	}
	sink.failAfter = 0
	if _, errs := e.run(sink, small, f); len(errs) > 0 {
		t.Fatal(errs)
	}
	sameRecords(t, sink.recs, want)
}

// TestImportGeneratedFormats round-trips generated records through each
// log format, format detection and the ingest parsers.
func TestImportGeneratedFormats(t *testing.T) {
	for _, tc := range []struct {
		format  string
		write   func([]byte, *record.Record) []byte
		vhost   bool // the format carries the domain
		seconds bool // the format has second precision
	}{
		{"json", loggen.AppendNDJSON, true, false},
		{"combined", loggen.AppendCombined, false, true},
		{"vhost_combined", loggen.AppendVhostCombined, true, true},
	} {
		t.Run(tc.format, func(t *testing.T) {
			g := loggen.New(loggen.Options{Seed: 12, Total: 5000, Days: 2, Start: time.Now().AddDate(0, 0, -3)})
			var want []record.Record
			var content []byte
			for !g.Done() {
				r := g.Next()
				content = tc.write(content, &r)
				if !tc.vhost {
					r.Domain = "default.example.nl"
				}
				if tc.seconds {
					r.Time = r.Time.Truncate(time.Second)
				}
				want = append(want, r)
			}
			e := newEnv(t)
			f := writeFile(t, filepath.Join(e.dir, "gen.log.zst"), content, "zstd")
			sink := &memSink{}
			sum, errs := e.run(sink, func(o *Options) {
				withIngest("default.example.nl")(o)
				o.TimeWindow = func(now time.Time) (time.Time, time.Time) { return now.AddDate(-2, 0, 0), now.Add(24 * time.Hour) }
			}, f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if sum.Rejected > 0 {
				var out bytes.Buffer
				sum.WriteText(&out)
				t.Fatal(out.String())
			}
			sameRecords(t, sink.recs, want)
		})
	}
}

// BenchmarkImportCombined is the offline import rate: generated combined
// lines, parsed by ingest, into a discarding sink. BenchmarkParseCombined is
// the parser alone on the same lines, for the ratio.
func BenchmarkImportCombined(b *testing.B) {
	benchImport(b, nil)
}

func BenchmarkParseCombined(b *testing.B) {
	data := combinedLog()
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for _, l := range lines {
			if _, err := parse.ParseLine(parse.FormatCombined, l, "bench.example.nl"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestAPISinkAgainstIngestHandler runs the API mode against the daemon's
// real ingest handler: the request and answer formats must agree, and the
// daemon's own rejections (here: its retention window, shorter than the
// importer's) come back with the file line they belong to.
func TestAPISinkAgainstIngestHandler(t *testing.T) {
	content := readFixture(t)
	stored := &memSink{}
	cutoff := time.Date(2015, 5, 19, 0, 0, 0, 0, time.UTC)
	h := ingest.NewHandler(ingest.Options{
		Sink:       stored,
		TimeWindow: func(time.Time) (time.Time, time.Time) { return cutoff, cutoff.AddDate(1, 0, 0) },
		Logger:     quiet,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/ingest", h.ServeIngest)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	e := newEnv(t)
	f := writeFile(t, filepath.Join(e.dir, "apache.log"), content, "")
	sum, errs := e.run(&APISink{Server: srv.URL}, withIngest("semicomplete.com"), f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var before int64
	for _, line := range bytes.Split(content, []byte("\n")) {
		if bytes.Contains(line, []byte("/May/2015:")) && (bytes.Contains(line, []byte("[17/May")) || bytes.Contains(line, []byte("[18/May"))) {
			before++
		}
	}
	if before == 0 || sum.Rejected != before || sum.Accepted != 10_000-before || int64(len(stored.recs)) != sum.Accepted {
		t.Fatalf("want %d rejected by the daemon and the rest stored; summary %+v, stored %d", before, sum, len(stored.recs))
	}
	if ex := sum.Reasons[0].Examples[0]; !strings.HasPrefix(ex, f+":1: time 2015-05-17T10:05:03Z") {
		t.Fatalf("first rejection %q does not name file line 1", ex)
	}
	for _, r := range stored.recs {
		if r.Time.Before(cutoff) || r.Domain != "semicomplete.com" {
			t.Fatalf("stored %+v", r)
		}
	}
}
