package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestEvidenceCLI: `retentiond search --evidence` writes a bundle that
// `retentiond evidence verify` accepts (exit 0); after one record is changed
// it exits 1 and names records.ndjson.
func TestEvidenceCLI(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, freePort(t)) // development mode: loopback, no token
	defer d.stop(syscall.SIGTERM)
	var lines []string
	for i := 0; i < 300; i++ {
		lines = append(lines, line(i))
	}
	if _, err := ingestBatch(d.addr, lines); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "ev.zip")
	cmd := exec.Command(binary(t), "search", "--server", "http://"+d.addr, "--case", "INC-9", "--reason", "cli test",
		"--from", "2026-10-01", "--evidence", bundle, "ip:192.0.2.7")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK:") || !strings.Contains(string(out), "2 records") {
		t.Fatalf("search --evidence: %v\n%s", err, out)
	}
	verify := func(path string) (int, string) {
		out, err := exec.Command(binary(t), "evidence", "verify", path).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := verify(bundle); code != 0 {
		t.Fatalf("untouched bundle: exit %d\n%s", code, out)
	}

	// Change one byte of one record and rezip, as a careless or dishonest
	// hand would.
	b, _ := os.ReadFile(bundle)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == "records.ndjson" {
			data = bytes.Replace(data, []byte("192.0.2.7"), []byte("192.0.2.8"), 1)
		}
		w, _ := zw.Create(f.Name)
		w.Write(data)
	}
	zw.Close()
	altered := filepath.Join(dir, "altered.zip")
	os.WriteFile(altered, buf.Bytes(), 0o600)
	code, out2 := verify(altered)
	if code != 1 || !strings.Contains(out2, "records.ndjson") {
		t.Fatalf("altered bundle: exit %d, want 1 naming records.ndjson\n%s", code, out2)
	}
	if code, _ := verify(filepath.Join(dir, "missing.zip")); code != 2 {
		t.Fatalf("missing file: exit %d, want 2", code)
	}
}
