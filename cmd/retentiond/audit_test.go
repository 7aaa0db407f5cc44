package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
)

// TestAuditVerifyWitnessInPurgedFile: `audit verify --expect-head` with a
// head that a purge removed cannot confirm anything, so it exits 1 saying
// the head was not found, instead of 0 with a note.
func TestAuditVerifyWitnessInPurgedFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	l, err := audit.Open(dir, audit.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if _, err := l.Append(audit.Entry{Endpoint: "search", Outcome: audit.OutcomeRefused, Case: "INC-1", Count: -1}); err != nil {
			t.Fatal(err)
		}
	}
	oldSeq, oldHash := l.Head()
	now = now.Add(48 * time.Hour)
	if _, err := l.Append(audit.Entry{Endpoint: "search", Outcome: audit.OutcomeRefused, Case: "INC-2", Count: -1}); err != nil {
		t.Fatal(err)
	}
	run := func(seq int64, hash string) (string, error) {
		cmd := newAuditCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"verify", "--dir", dir, "--expect-head", fmt.Sprintf("%d:%s", seq, hash)})
		err := cmd.Execute()
		return out.String(), err
	}
	if out, err := run(oldSeq, oldHash); err != nil {
		t.Fatalf("witness before the purge: %v\n%s", err, out)
	}
	if n, err := l.Purge(context.Background(), now.Add(-24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	out, err := run(oldSeq, oldHash)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "cannot be confirmed") {
		t.Fatalf("witness in a purged file: err %v, output %q; want exit 1 saying it was not found and cannot be confirmed", err, out)
	}
	newSeq, newHash := l.Head()
	if out, err := run(newSeq, newHash); err != nil {
		t.Fatalf("current head: %v\n%s", err, out)
	}
}
