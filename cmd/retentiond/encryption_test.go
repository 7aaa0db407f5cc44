package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestEncryptedDaemonVerifyAndRotate runs the daemon with encryption at
// rest and the master key handed over as a systemd credential would be (a
// relative encryption.master_key_file found in $CREDENTIALS_DIRECTORY),
// checks that its data directory holds the ingested paths only sealed,
// then that verify checks the day keys: OK, a missing key names the
// segment, an edited key file is named, a missing master key is a problem;
// and that keys rotate-master re-wraps the keys for a new master key.
func TestEncryptedDaemonVerifyAndRotate(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	os.MkdirAll(creds, 0o700)
	master := bytes.Repeat([]byte{0x61}, 32)
	if err := os.WriteFile(filepath.Join(creds, "master.key"), master, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	d := startDaemon(t, dir, addr, "RETENTIOND_ENCRYPTION_ENABLED=true",
		"RETENTIOND_ENCRYPTION_MASTER_KEY_FILE=master.key", "CREDENTIALS_DIRECTORY="+creds)
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, line(i))
	}
	if _, err := ingestBatch(addr, lines); err != nil {
		t.Fatal(err)
	}
	if got := searchAll(t, addr); len(got) != 100 {
		t.Fatalf("encrypted daemon finds %d records, want 100", len(got))
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	scan := func(needle string) []string {
		var hits []string
		filepath.WalkDir(data, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.Contains(p, string(filepath.Separator)+"audit"+string(filepath.Separator)) {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(needle)) {
					hits = append(hits, p)
				}
			}
			return nil
		})
		return hits
	}
	for _, n := range []string{"/seq/42", "shop3.example.nl", "192.0.2.42", "\xc0\x00\x02\x2a"} {
		if hits := scan(n); len(hits) > 0 {
			t.Errorf("%q in clear in %v", n, hits)
		}
	}

	verify := func(args ...string) (string, int) {
		out, err := exec.Command(binary(t), append([]string{"verify", "--data-dir", data}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
		return "", -1
	}
	mk := filepath.Join(creds, "master.key")
	if out, code := verify("--master-key", mk); code != 0 || !strings.Contains(out, "keys: 1 day keys") || !strings.Contains(out, "100 records") {
		t.Fatalf("verify of a healthy encrypted directory: exit %d\n%s", code, out)
	}
	if out, code := verify(); code != 1 || !strings.Contains(out, "no key ring") {
		t.Fatalf("verify without the master key: exit %d\n%s", code, out)
	}
	keyFile := filepath.Join(data, "keys", "2026-11-01.key")
	orig, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(keyFile)
	if out, code := verify("--master-key", mk); code != 1 || !strings.Contains(out, "no key for this day") || !strings.Contains(out, ".seg") {
		t.Fatalf("verify with the day's key missing: exit %d\n%s", code, out)
	}
	edited := bytes.Clone(orig)
	edited[len(edited)-3] ^= 1
	os.WriteFile(keyFile, edited, 0o600)
	if out, code := verify("--master-key", mk); code != 1 || !strings.Contains(out, "key of day 2026-11-01") || !strings.Contains(out, "cannot be unwrapped") {
		t.Fatalf("verify with an edited key file: exit %d\n%s", code, out)
	}
	os.WriteFile(keyFile, orig, 0o600)

	newKey := filepath.Join(creds, "master.key.new")
	os.WriteFile(newKey, bytes.Repeat([]byte{0x62}, 32), 0o600)
	out, err := exec.Command(binary(t), "keys", "rotate-master", "--key-dir", filepath.Join(data, "keys"),
		"--old", mk, "--new", newKey).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "re-wrapped 1 day key") {
		t.Fatalf("rotate-master: %v\n%s", err, out)
	}
	if out, code := verify("--master-key", mk); code != 1 || !strings.Contains(out, "another master key") {
		t.Fatalf("verify with the old master key after rotation: exit %d\n%s", code, out)
	}
	if out, code := verify("--master-key", newKey); code != 0 {
		t.Fatalf("verify with the new master key: exit %d\n%s", code, out)
	}
	out, err = exec.Command(binary(t), "keys", "days", "--key-dir", filepath.Join(data, "keys")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2026-11-01") || !strings.Contains(string(out), "active") {
		t.Fatalf("keys days: %v\n%s", err, out)
	}
}
