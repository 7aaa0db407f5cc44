package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// cli runs one retentiond command in-process and returns its output and
// exit status (0, or the exitError's code, 1 for other errors).
func cli(t *testing.T, stdin io.Reader, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String() + err.Error(), ee.code
	default:
		return out.String() + err.Error(), 1
	}
}

func countFor(t *testing.T, addr, caseID, q string) int {
	t.Helper()
	v := url.Values{"q": {q}, "case": {caseID}, "reason": {"proofs test"}, "from": {"2000-01-01"}}
	resp, err := http.Get("http://" + addr + "/api/v1/count?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("count: %d %v", resp.StatusCode, err)
	}
	return c.Count
}

// TestPrivacyProofs drives issue 19's items 2-5 through the real daemon and
// CLI: a hold keeps a day through the start-up purge and only its case
// reads it; the purge leaves a signed report that verifies and refuses an
// edit; release lets the next purge destroy the day; an erasure removes an
// address; and the checkpoints in the daemon's log verify the audit chain
// and catch lines cut off its end.
func TestPrivacyProofs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	today := record.Day(time.Now())
	target := netip.MustParseAddr("203.0.113.7")
	for d := 1; d <= 45; d++ {
		for i, ip := range []netip.Addr{target, netip.MustParseAddr("198.51.100.9")} {
			r := record.Record{Time: today.AddDate(0, 0, -d).Add(time.Hour + time.Duration(i)*time.Minute), Domain: "old.example.nl",
				Path: fmt.Sprintf("/day/%d", d), UserAgent: "proofs", IP: ip}
			if err := st.Append(context.Background(), []record.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	server := "http://" + addr
	d := startDaemon(t, dir, addr, "RETENTIOND_RETENTION=90d")
	heldDay := record.DayString(today.AddDate(0, 0, -40))
	out, code := cli(t, nil, "hold", "add", "--server", server, "--case", "INC-42", "--from", heldDay, "--to", heldDay,
		"--reason", "fraud complaint", "--until", record.DayString(today.AddDate(1, 0, 0)))
	if code != 0 || !strings.Contains(out, "placed hold-1") {
		t.Fatalf("hold add: %d %s", code, out)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.logs())
	}
	logs := d.logs()

	// With 30d the start-up purge destroys days -31..-45, except the held one.
	d = startDaemon(t, dir, addr, "RETENTIOND_RETENTION=30d")
	running := true
	defer func() {
		if running {
			d.stop(syscall.SIGTERM)
		}
	}()
	left, _ := filepath.Glob(filepath.Join(data, "days", "*"))
	if len(left) != 31 {
		t.Fatalf("%d days left, want 30 unexpired and the held one", len(left))
	}
	if _, err := os.Stat(filepath.Join(data, "days", heldDay)); err != nil {
		t.Fatalf("the held day is gone: %v", err)
	}
	if n := countFor(t, addr, "INC-42", "ua:proofs"); n != 62 {
		t.Fatalf("the holding case counts %d, want 62 (31 days x 2)", n)
	}
	if n := countFor(t, addr, "INC-7", "ua:proofs"); n != 60 {
		t.Fatalf("another case counts %d, want 60: the held day must look destroyed", n)
	}

	// The start-up purge's report verifies; an edited copy names the field.
	reports, _ := filepath.Glob(filepath.Join(data, "reports", "*-purge.json"))
	if len(reports) != 2 {
		t.Fatalf("%d purge reports, want one per start-up run", len(reports))
	}
	rep := reports[1] // names sort by time: the second start's run
	out, code = cli(t, nil, "report", "verify", "--data-dir", data, rep)
	if code != 0 {
		t.Fatalf("report verify of an untouched report: %d %s", code, out)
	}
	b, _ := os.ReadFile(rep)
	if !bytes.Contains(b, []byte(`"trigger": "startup"`)) || !bytes.Contains(b, []byte(`"holds": [`)) {
		t.Fatalf("report lacks the trigger or the held day:\n%s", b)
	}
	edited := filepath.Join(dir, "edited.json")
	os.WriteFile(edited, bytes.Replace(b, []byte(`"records": 2,`), []byte(`"records": 0,`), 1), 0o600)
	out, code = cli(t, nil, "report", "verify", "--data-dir", data, edited)
	if code != 1 || !strings.Contains(out, "report.days[0].records: changed after signing") {
		t.Fatalf("report verify of an edited report: %d %s", code, out)
	}
	out, code = cli(t, nil, "keys", "--data-dir", data)
	if code != 0 || !strings.Contains(logs, "fingerprint="+strings.Fields(strings.Split(out, "fingerprint:")[1])[0]) {
		t.Fatalf("keys: %d %s", code, out)
	}

	// Release: the next purge destroys the day and the hold.
	if out, code := cli(t, nil, "hold", "release", "--server", server, "hold-1", "--reason", "case closed"); code != 0 {
		t.Fatalf("hold release: %d %s", code, out)
	}
	if out, code := cli(t, nil, "purge", "--server", server); code != 0 {
		t.Fatalf("purge: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(data, "days", heldDay)); err == nil {
		t.Fatal("the released day survived the purge")
	}
	if out, _ := cli(t, nil, "hold", "list", "--server", server, "--json"); !strings.Contains(out, `"holds":[]`) {
		t.Fatalf("hold list after purge: %s", out)
	}

	// Erasure.
	out, code = cli(t, nil, "erase", "--server", server, "--ip", target.String(), "--case", "GDPR-1", "--reason", "Art. 17 request")
	if code != 0 || !strings.Contains(out, "erased 30 records") {
		t.Fatalf("erase: %d %s", code, out)
	}
	if n := countFor(t, addr, "INC-7", "ip:"+target.String()); n != 0 {
		t.Fatalf("the erased address still counts %d", n)
	}
	if n := countFor(t, addr, "INC-7", "ua:proofs"); n != 30 {
		t.Fatalf("the other records count %d, want 30", n)
	}
	running = false
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs += d.logs()
	if strings.Contains(d.logs(), target.String()) {
		t.Fatal("the daemon's log names the erased address")
	}

	// The witness: the daemon's log verifies the chain; three lines cut
	// off its end are caught.
	logFile := filepath.Join(dir, "daemon.log")
	os.WriteFile(logFile, []byte(logs), 0o600)
	out, code = cli(t, strings.NewReader(logs), "audit", "verify", "--data-dir", data, "--checkpoints", "-")
	if code != 0 || !strings.Contains(out, "last matching checkpoint: seq") {
		t.Fatalf("audit verify --checkpoints: %d %s", code, out)
	}
	files, _ := filepath.Glob(filepath.Join(data, "audit", "audit-*.jsonl"))
	last := files[len(files)-1]
	ab, _ := os.ReadFile(last)
	lines := bytes.SplitAfter(ab, []byte("\n"))
	os.WriteFile(last, bytes.Join(lines[:len(lines)-4], nil), 0o600)
	out, code = cli(t, nil, "audit", "verify", "--data-dir", data, "--checkpoints", logFile)
	if code != 1 || !strings.Contains(out, "cut off") {
		t.Fatalf("audit verify --checkpoints after cutting three lines: %d %s", code, out)
	}
}
