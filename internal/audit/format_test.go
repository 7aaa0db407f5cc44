package audit

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/testkit"
)

// TestLineGolden pins the on-disk line format documented in
// docs/security.md: a change to it breaks every existing audit log.
func TestLineGolden(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 11, 21, 16, 27, 8, 123456789, time.UTC))
	dir := t.TempDir()
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := l.Append(Entry{Endpoint: "search", Outcome: OutcomeAllowed, Token: "alice", Source: "192.0.2.10",
		Case: "INC-2026-042", Reason: "webshell <upload> & \"exfil\"", Query: `ip:203.0.113.7 path:/wp-admin/*`,
		From: "2026-11-01", To: "-1h", Params: "format=csv&limit=100", Count: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.Add(1500 * time.Millisecond)
	if _, err := l.Append(Entry{Endpoint: "search", Outcome: OutcomeDone, Ref: seq, Token: "alice", Source: "192.0.2.10",
		Case: "INC-2026-042", Status: 200, Count: 17, Bytes: 2048, Duration: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if _, err := l.Append(Entry{Endpoint: "count", Outcome: OutcomeRefused, Source: "198.51.100.4", Status: 401,
		Error: "authentication: invalid_token", Count: -1}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	got, err := os.ReadFile(filepath.Join(dir, "audit-2026-11-21.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "lines.golden"), got)
}

// TestCrashDurability SIGKILLs a child that appends as fast as it can and
// prints each seq once Append returned. After every kill the log must open
// (repairing a torn tail), verify, and contain every acknowledged line.
// This proves durability across process crashes, not power loss.
func TestCrashDurability(t *testing.T) {
	if os.Getenv("RTD_AUDIT_CRASH_DIR") != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RTD_AUDIT_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var acked int64
		for n := 0; n < 30+round*7 && sc.Scan(); {
			if v, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				acked = v
				n++
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if acked == 0 {
			t.Fatal("child acknowledged nothing")
		}
		l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		seq, _ := l.Head()
		l.Close()
		if seq < acked {
			t.Fatalf("round %d: head %d < acknowledged %d: an acknowledged line was lost", round, seq, acked)
		}
		res, err := Verify(dir)
		if err != nil || res.FirstBad != nil {
			t.Fatalf("round %d: verify: %v %v", round, err, res.FirstBad)
		}
	}
}

// TestCrashChild is the child process of TestCrashDurability.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("RTD_AUDIT_CRASH_DIR")
	if dir == "" {
		t.Skip("only run as a child of TestCrashDurability")
	}
	l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	for {
		seq, err := l.Append(Entry{Endpoint: "search", Outcome: OutcomeAllowed, Token: "alice", Case: "INC-1", Reason: "crash test", Count: -1})
		if err != nil {
			fmt.Println("append:", err)
			os.Exit(3)
		}
		fmt.Println(seq)
	}
}
