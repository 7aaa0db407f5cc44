package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/auth"
)

// TestAuditRedactsSecrets: whatever a client sends, no token reaches the
// audit log: parameters named like a secret are redacted, and a token-shaped
// string is redacted wherever it appears.
func TestAuditRedactsSecrets(t *testing.T) {
	e := newEnv(t)
	other, _, err := auth.NewToken() // a token of someone else, pasted into the request
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"q": {"path:*" + other + "*"}, "case": {"INC-1"}, "reason": {"leak of " + other},
		"api_key": {other}, "apikey": {"hunter2"}, "password": {"hunter2"}, "Secret": {"hunter2"},
		"format": {"csv"}, "x": {"see " + other}}
	resp, _ := e.get(t, "/api/v1/search", q, e.token)
	if resp.StatusCode != 200 {
		t.Fatalf("search: %d", resp.StatusCode)
	}
	refused := url.Values{"q": {"x"}, "api_key": {other}} // no case: refused and audited
	if r, _ := e.get(t, "/api/v1/search", refused, e.token); r.StatusCode != 400 {
		t.Fatalf("refused: %d", r.StatusCode)
	}
	files, _ := listFiles(e.log.Dir())
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(e.log.Dir(), f))
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	secret := other[len(auth.TokenPrefix):]
	for _, n := range []string{secret, secret[:16], "hunter2", e.token[len(auth.TokenPrefix):]} {
		if strings.Contains(all.String(), n) {
			t.Errorf("audit log contains %q:\n%s", n, all.String())
		}
	}
	ls := e.lines(t)
	if len(ls) != 3 {
		t.Fatalf("%d lines, want allowed, done, refused", len(ls))
	}
	if p := ls[0].Params; !strings.Contains(p, "api_key=%5Bredacted%5D") || !strings.Contains(p, "format=csv") {
		t.Errorf("params %q: want the secret's name kept with a redacted value, other parameters as sent", p)
	}
	if !strings.Contains(ls[0].Query, "rtd_[redacted]") || !strings.Contains(ls[0].Reason, "rtd_[redacted]") {
		t.Errorf("query %q reason %q: want the token shown as rtd_[redacted]", ls[0].Query, ls[0].Reason)
	}
}

// TestGuardRefusesWhatCannotBeRecordedExactly: the audit log must record
// exactly what ran, so a query, case or reason that is not valid UTF-8
// (JSON would store U+FFFD) is refused with 400, as is a case or reason
// with bidi controls or other invisible format characters (Trojan Source),
// which would make the log read differently from what it holds.
func TestGuardRefusesWhatCannotBeRecordedExactly(t *testing.T) {
	e := newEnv(t)
	ok := func() url.Values {
		return url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-1"}, "reason": {"leak"}}
	}
	tests := []struct {
		name, param, value, want string
	}{
		{"invalid utf-8 in query", "q", "path:/\xff", "UTF-8"},
		{"invalid utf-8 in from", "from", "2026-\xff", "UTF-8"},
		{"invalid utf-8 in another parameter", "format", "\xfe", "UTF-8"},
		{"invalid utf-8 in case", "case", "INC-\xff", "UTF-8"},
		{"invalid utf-8 in reason", "reason", "leak \xc3", "UTF-8"},
		{"right-to-left override in case", "case", "INC-1\u202e7-CNI", "format"},
		{"right-to-left isolate in case", "case", "INC-\u20671\u2069", "format"},
		{"right-to-left mark in reason", "reason", "leak\u200f", "format"},
		{"zero-width space in case", "case", "INC\u200b-1", "format"},
		{"byte order mark in reason", "reason", "\ufeffleak", "format"},
		{"soft hyphen in case", "case", "INC\u00ad-1", "format"},
		{"C1 control in case", "case", "INC\u0085-1", "control"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := ok()
			q.Set(tc.param, tc.value)
			before := e.handled
			resp, body := e.get(t, "/api/v1/search", q, e.token)
			if resp.StatusCode != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d body %s; want 400 naming %q", resp.StatusCode, body, tc.want)
			}
			if e.handled != before {
				t.Fatal("the search ran")
			}
			ls := e.lines(t)
			last := ls[len(ls)-1]
			if last.Outcome != OutcomeRefused || last.Status != 400 {
				t.Fatalf("last line %+v, want the refusal", last)
			}
			b, _ := json.Marshal(last)
			if strings.Contains(string(b), `\ufffd`) || strings.ContainsRune(string(b), '\ufffd') {
				t.Errorf("refusal line holds U+FFFD instead of the bytes sent: %s", b)
			}
		})
	}
	// Plain non-ASCII text is fine.
	q := ok()
	q.Set("case", "INC-ÄÖ-1")
	q.Set("reason", "Datenleck bei Bücher-Shop, 顧客データ")
	q.Set("q", "domain:bücher.example")
	if resp, body := e.get(t, "/api/v1/search", q, e.token); resp.StatusCode != 200 {
		t.Fatalf("non-ASCII justification: %d %s", resp.StatusCode, body)
	}
}

// TestVerifyWitnessInPurgedFiles: a witnessed head that lies in purged files
// cannot be found, so it cannot confirm anything: that is a failure, not a
// note.
func TestVerifyWitnessInPurgedFiles(t *testing.T) {
	dir, c := writeChain(t, 20, 7) // days 03-01..03-03
	res, _ := Verify(dir)
	witnessSeq, witnessHash := int64(3), ""
	for _, s := range readLines(t, filepath.Join(dir, "audit-2026-03-01.jsonl")) {
		l, h, err := parseLine([]byte(strings.TrimSuffix(s, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		if l.Seq == witnessSeq {
			witnessHash = h
		}
	}
	if r, _ := VerifyWith(dir, VerifyOptions{ExpectSeq: witnessSeq, ExpectHash: witnessHash}); r.FirstBad != nil {
		t.Fatalf("witness before the purge: %s", r.FirstBad)
	}
	c.Add(24 * time.Hour)
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Purge(context.Background(), time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	r, err := VerifyWith(dir, VerifyOptions{ExpectSeq: witnessSeq, ExpectHash: witnessHash})
	if err != nil || r.FirstBad == nil || !r.FirstBad.Witness || !strings.Contains(r.FirstBad.Reason, "not found") ||
		!strings.Contains(r.FirstBad.Reason, "purged") {
		t.Fatalf("witness in purged files: %+v %v; want a failure saying it was not found and lies in purged files", r.FirstBad, err)
	}
	// The current head still confirms.
	if r, _ := VerifyWith(dir, VerifyOptions{ExpectSeq: res.HeadSeq, ExpectHash: res.HeadHash}); r.FirstBad != nil {
		t.Fatalf("witness after the purge anchor: %s", r.FirstBad)
	}
}

// TestPurgeDecidesByContent: renaming today's audit file to an old date
// (with the daemon stopped) must not get it destroyed as expired: the purge
// reads the newest line's time, keeps the file and reports it.
func TestPurgeDecidesByContent(t *testing.T) {
	dir, c := writeChain(t, 5, 100) // all on 2026-03-01
	c.Add(24 * time.Hour)           // 2026-03-02
	if err := os.Rename(filepath.Join(dir, "audit-2026-03-01.jsonl"), filepath.Join(dir, "audit-2025-01-01.jsonl")); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := l.Purge(context.Background(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 0 {
		t.Fatalf("purge: %d files, %v; want none (its lines are from 2026-03-01)", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit-2025-01-01.jsonl")); err != nil {
		t.Fatalf("renamed file destroyed: %v", err)
	}
	if !strings.Contains(logs.String(), "audit-2025-01-01.jsonl") || !strings.Contains(logs.String(), "newer than its name") {
		t.Errorf("the mismatch is not reported: %s", logs.String())
	}
	// Once its lines really expire, it goes.
	if n, err := l.Purge(context.Background(), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)); err != nil || n != 1 {
		t.Fatalf("purge after expiry: %d, %v; want 1", n, err)
	}
	if res, _ := Verify(dir); res.FirstBad != nil {
		t.Fatalf("chain after purge: %s", res.FirstBad)
	}
}

// TestSanitizeShowsFormatCharacters: `audit show` prints what older lines
// may hold (a right-to-left override in a case id) visibly.
func TestSanitizeShowsFormatCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"INC-1\u202e7-CNI": `INC-1\u202e7-CNI`,
		"a\x1b[31mb":       `a\x1b[31mb`,
		"Bücher":           "Bücher",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
