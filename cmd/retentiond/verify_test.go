package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/store"
)

// TestVerifyConfigAuditPath: `verify --config` checks the audit log where
// the config's daemon writes it (audit.path), not only DATA_DIR/audit: a
// log kept elsewhere was never verified, so damage in it went unreported.
// With --data-dir alone, DATA_DIR/audit is the log.
func TestVerifyConfigAuditPath(t *testing.T) {
	data, auditDir := t.TempDir(), filepath.Join(t.TempDir(), "audit-elsewhere")
	if err := os.Mkdir(store.DaysDir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(auditDir, audit.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(audit.Entry{Endpoint: "search", Outcome: audit.OutcomeRefused, Case: "INC-1", Count: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "retentiond.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+data+"\naudit:\n  path: "+auditDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) { return runCmd(t, newVerifyCmd, args...) }
	out, err := run("--config", cfg)
	if err != nil || !strings.Contains(out, "audit: 3 lines, chain intact") {
		t.Fatalf("verify --config with audit.path: err %v, output %q; want the audit log at audit.path verified", err, out)
	}
	if out, err := run("--data-dir", data); err != nil || strings.Contains(out, "audit:") {
		t.Fatalf("verify --data-dir: err %v, output %q; want DATA_DIR/audit (absent here) and no other log", err, out)
	}

	// Damage in that log is found and named.
	files, err := filepath.Glob(filepath.Join(auditDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("audit files: %v %v", files, err)
	}
	var logFile string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("INC-1")) {
			logFile = f
		}
	}
	if logFile == "" {
		t.Fatalf("no audit file names the case among %v", files)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logFile, bytes.Replace(b, []byte("INC-1"), []byte("INC-2"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run("--config", cfg)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "DAMAGED: audit:") {
		t.Fatalf("verify --config with a damaged log at audit.path: err %v, output %q; want exit 1 naming the audit damage", err, out)
	}
}
