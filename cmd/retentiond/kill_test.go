package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSigkillUnderLoad kills the real daemon with SIGKILL at a random moment
// while four HTTP clients ingest, several times over one data directory, and
// then checks that every acknowledged record is stored exactly once and that
// nothing appears that was never sent. A batch whose answer never arrived
// may or may not be stored: it was not acknowledged. Three rounds by
// default; RTD_TEST_DAEMON_KILLS sets another number (e.g. 200 locally).
func TestSigkillUnderLoad(t *testing.T) {
	rounds := daemonKills(t)
	dir := t.TempDir()
	addr := freePort(t)
	acks := newAckLog()
	acked, sent := acks.acked, acks.sent
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var next atomic.Int64 // the next sequence number to send
	for round := 0; round < rounds; round++ {
		d := startDaemon(t, dir, addr)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					base := int(next.Add(50)) - 50
					lines := make([]string, 0, 50)
					seqs := make([]int, 0, 50)
					for i := 0; i < 50; i++ {
						seq := base + i
						lines = append(lines, msLine(seq))
						seqs = append(seqs, seq)
					}
					if !acks.post(t, addr, lines, seqs) {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(750)) * time.Millisecond)
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.done
		cancel()
		wg.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before the kills")
	}
	d := startDaemon(t, dir, addr)
	defer d.stop(syscall.SIGTERM)
	seen := searchAll(t, addr)
	for s := range acked {
		if seen[s] != 1 {
			t.Fatalf("acknowledged record %d found %d times after %d SIGKILLs", s, seen[s], rounds)
		}
	}
	for s, n := range seen {
		if !sent[s] {
			t.Fatalf("record %d is stored but was never sent", s)
		}
		if n != 1 {
			t.Fatalf("record %d stored %d times", s, n)
		}
	}
	t.Logf("%d SIGKILL rounds: %d acknowledged records all present exactly once (%d stored in all, %d sent)",
		rounds, len(acked), len(seen), len(sent))
}

// daemonKills is the number of SIGKILL rounds of the tests that kill the
// real daemon: 3, or RTD_TEST_DAEMON_KILLS.
func daemonKills(t *testing.T) int {
	t.Helper()
	s := os.Getenv("RTD_TEST_DAEMON_KILLS")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("RTD_TEST_DAEMON_KILLS=%q: want a whole number >= 1", s)
	}
	return n
}

// msLine is line with records a millisecond apart, so that millions of them
// stay inside searchAll's range and none lies in the future.
func msLine(seq int) string {
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
	return fmt.Sprintf(`{"time":%q,"domain":"shop%d.example.nl","path":"/seq/%d","user_agent":"e2e","ip":"192.0.2.%d"}`,
		ts.Format(time.RFC3339Nano), seq%5, seq, seq%200)
}

// ackLog is what a test that kills the daemon under load knows of each
// record (by sequence number): sent, and acknowledged (its batch answered
// with every line accepted). After the kill, every acknowledged record
// must be stored exactly once, and nothing that was never sent.
type ackLog struct {
	mu          sync.Mutex
	sent, acked map[int]bool
}

func newAckLog() *ackLog { return &ackLog{sent: map[int]bool{}, acked: map[int]bool{}} }

// post sends lines (carrying seqs) to addr as one batch, marking them sent
// before and acknowledged after a full answer. It returns false when the
// batch was not acknowledged (the daemon was killed) or not wholly
// accepted (a test error).
func (l *ackLog) post(t *testing.T, addr string, lines []string, seqs []int) bool {
	l.mu.Lock()
	for _, s := range seqs {
		l.sent[s] = true
	}
	l.mu.Unlock()
	n, err := ingestBatch(addr, lines)
	if err != nil {
		return false // killed: this batch was not acknowledged
	}
	if n != len(lines) {
		t.Errorf("accepted %d of %d", n, len(lines))
		return false
	}
	l.mu.Lock()
	for _, s := range seqs {
		l.acked[s] = true
	}
	l.mu.Unlock()
	return true
}
