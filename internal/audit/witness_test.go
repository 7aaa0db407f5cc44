package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/signing"
)

// witnessLog writes 12 search lines with a checkpoint every 5 lines and one
// at shutdown, logging in the given slog format, and returns the audit
// directory and what the daemon's log received.
func witnessLog(t *testing.T, key *signing.Key, jsonFormat bool) (dir string, daemonLog []byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if jsonFormat {
		h = slog.NewJSONHandler(&buf, nil)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	l, err := Open(dir, Options{Logger: slog.New(h).With("component", "audit"), Signer: key, CheckpointLines: 5,
		Now: func() time.Time { now = now.Add(time.Minute); return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := l.Append(Entry{Endpoint: "search", Outcome: OutcomeAllowed, Case: "INC-42", Reason: "r", Query: "ip:192.0.2." + string(rune('0'+i%10))}); err != nil {
			t.Fatal(err)
		}
	}
	l.Checkpoint("shutdown")
	l.Close()
	return dir, buf.Bytes()
}

// rehash rewrites the chain in file with line n's query changed and every
// hash recomputed: a rewrite the chain alone cannot detect.
func rehash(t *testing.T, file string, n int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	prev := Genesis
	for i, raw := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		l, _, err := parseLine(raw)
		if err != nil {
			t.Fatal(err)
		}
		if i+1 == n {
			l.Query = "ip:198.51.100.1"
		}
		l.Prev = prev
		enc, h, err := encodeLine(l)
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, enc...), h
	}
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func cutLines(t *testing.T, file string, n int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1-n] // the last element is the empty one after the final newline
	if err := os.WriteFile(file, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointsDetectTampering is the proof: checkpoints read back
// out of the daemon's log (text and JSON format) detect the last three
// lines cut off, the only file deleted and a rehashed chain, and name the
// last checkpoint that still matches; an untouched log passes.
func TestCheckpointsDetectTampering(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := signing.NewKey(priv)
	for _, format := range []string{"text", "json"} {
		tests := []struct {
			name      string
			tamper    func(t *testing.T, file string)
			lastMatch int64 // 0: none
			reason    string
		}{
			{"untouched", func(*testing.T, string) {}, 12, ""},
			{"last three lines cut off", func(t *testing.T, f string) { cutLines(t, f, 3) }, 5, "cut off its end"},
			{"the only file deleted", func(t *testing.T, f string) { os.Remove(f) }, 0, "audit files were deleted"},
			{"chain rehashed from line 7", func(t *testing.T, f string) { rehash(t, f, 7) }, 5, "rewritten"},
		}
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				dir, daemonLog := witnessLog(t, key, format == "json")
				files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
				if len(files) != 1 {
					t.Fatalf("%d audit files", len(files))
				}
				tt.tamper(t, files[0])
				cps, invalid, err := ReadCheckpoints(bytes.NewReader(daemonLog), key.Public())
				if err != nil || invalid != 0 {
					t.Fatalf("read: %v, %d invalid", err, invalid)
				}
				// Lines 5 and 10, and the shutdown one at 12.
				if len(cps) != 3 || cps[0].Seq != 5 || cps[1].Seq != 10 || cps[2].Seq != 12 || cps[2].Reason != "shutdown" {
					t.Fatalf("checkpoints %+v", cps)
				}
				res, err := VerifyCheckpoints(dir, cps)
				if err != nil {
					t.Fatal(err)
				}
				if tt.name == "chain rehashed from line 7" && res.Chain.FirstBad != nil {
					t.Fatalf("the rehash is detectable without checkpoints (%s); the test proves nothing", res.Chain.FirstBad)
				}
				var last int64
				if res.LastMatch != nil {
					last = res.LastMatch.Seq
				}
				if last != tt.lastMatch {
					t.Errorf("last match %d, want %d", last, tt.lastMatch)
				}
				if tt.reason == "" && res.FirstBad != nil || tt.reason != "" && (res.FirstBad == nil || !strings.Contains(res.Reason, tt.reason)) {
					t.Errorf("first bad %+v: %q, want %q", res.FirstBad, res.Reason, tt.reason)
				}
			})
		}
	}
}

func TestCheckpointsForgedOrOtherKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := signing.NewKey(priv)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, daemonLog := witnessLog(t, key, false)
	forged := Checkpoint{Seq: 99, Hash: Genesis, Time: time.Now()}.Token(signing.NewKey(other))
	edited := bytes.Replace(daemonLog, []byte("rtdcp1.e"), []byte("rtdcp1.f"), 1)
	in := append(append(edited, forged...), '\n')
	cps, invalid, err := ReadCheckpoints(bytes.NewReader(in), key.Public())
	if err != nil || invalid != 2 || len(cps) != 2 {
		t.Fatalf("read %d valid, %d invalid, %v; want the edited and the forged one refused", len(cps), invalid, err)
	}
}

func TestCheckpointOfPurgedFile(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := signing.NewKey(priv)
	dir, daemonLog := witnessLog(t, key, true)
	cps, _, _ := ReadCheckpoints(bytes.NewReader(daemonLog), key.Public())
	// A confirmed purge removed the file of 2026-03-02; a checkpoint taken
	// that day lies in it and is expected to be gone. One taken on a day
	// the purge did not reach is not.
	now := time.Date(2026, 3, 4, 0, 5, 0, 0, time.UTC)
	l, err := Open(dir, Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Purge(t.Context(), time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)); err != nil || n != 1 {
		t.Fatalf("purge %d %v", n, err)
	}
	l.Close()
	res, err := VerifyCheckpoints(dir, cps)
	if err != nil || res.FirstBad != nil || res.Purged != 3 {
		t.Fatalf("after a purge: %+v %v", res, err)
	}
	late := cps[2]
	late.Time = time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)
	if res, _ := VerifyCheckpoints(dir, []Checkpoint{late}); res.FirstBad == nil {
		t.Fatal("a checkpoint newer than what the purge removed was accepted as purged")
	}
}
