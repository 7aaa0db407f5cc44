package wal

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv  = "RTD_TEST_WAL_CRASH_DIR"
	crashBaseEnv = "RTD_TEST_WAL_CRASH_BASE"
)

// TestHelperProcess is the child of TestCrashSIGKILL. It appends numbered
// payloads from several goroutines and prints "ack <seq>" only after Append
// returned nil, so every printed sequence number was acknowledged. It runs
// until the parent kills it.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashSIGKILL")
	}
	base, _ := strconv.Atoi(os.Getenv(crashBaseEnv))
	w, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var (
		mu  sync.Mutex
		seq = base
	)
	for g := 0; g < 8; g++ {
		go func() {
			for {
				mu.Lock()
				s := seq
				seq++
				mu.Unlock()
				if _, err := w.Append(crashPayload(s)); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				// One write(2) per line: a pipe write this small is atomic,
				// so the parent never sees half a number.
				mu.Lock()
				os.Stdout.WriteString("ack " + strconv.Itoa(s) + "\n")
				mu.Unlock()
			}
		}()
	}
	// A child the parent forgot must not run forever.
	time.Sleep(30 * time.Second)
	os.Exit(5)
}

func crashPayload(seq int) []byte {
	return []byte(fmt.Sprintf("seq=%d;%s", seq, strings.Repeat("x", seq%700)))
}

// TestCrashSIGKILL kills a child that is appending at a random moment and
// checks that every acknowledged payload is replayed exactly once. The same
// directory is reused across rounds, so later rounds also open logs whose
// tails earlier kills tore. RTD_TEST_CRASH_ROUNDS raises the default of 20.
// This proves process-crash durability only: the page cache survives SIGKILL.
func TestCrashSIGKILL(t *testing.T) {
	rounds := 20
	if s := os.Getenv("RTD_TEST_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("RTD_TEST_CRASH_ROUNDS: %v", err)
		}
		rounds = n
	}
	if testing.Short() {
		rounds = min(rounds, 5)
	}
	dir := t.TempDir()
	acked := map[int]bool{}
	base := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashBaseEnv+"="+strconv.Itoa(base))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int, 1<<16)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			r := bufio.NewReader(out)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a line without '\n' was cut by the kill and is ignored
				}
				if s, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack "); ok {
					n, err := strconv.Atoi(s)
					if err == nil {
						lines <- n
					}
				}
			}
		}()
		// Most rounds kill at a random moment after the first ack; every
		// fifth kills at a random moment from start, possibly inside Open.
		if round%5 != 0 {
			select {
			case n := <-lines:
				acked[n] = true
			case <-readDone:
			}
		}
		time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill: %v", err)
		}
		<-readDone
		err = cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v), not by SIGKILL; stderr: %s", round, err, stderr.String())
		}
		close(lines)
		for n := range lines {
			acked[n] = true
		}
		base += 1 << 20 // sequence numbers stay unique across rounds

		w, err := Open(dir, Options{SegmentSize: 64 << 10, Logger: discardLogger()})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		seen := map[int]int{}
		err = w.Replay(0, func(_ int, p []byte) error {
			s, _, _ := strings.Cut(strings.TrimPrefix(string(p), "seq="), ";")
			n, err := strconv.Atoi(s)
			if err != nil || string(p) != string(crashPayload(n)) {
				return fmt.Errorf("replayed a payload that was never written (%d bytes)", len(p))
			}
			seen[n]++
			return nil
		})
		if cerr := w.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatalf("round %d: replay: %v", round, err)
		}
		for n, c := range seen {
			if c != 1 {
				t.Fatalf("round %d: payload %d replayed %d times", round, n, c)
			}
		}
		for n := range acked {
			if seen[n] != 1 {
				t.Fatalf("round %d: acknowledged payload %d lost", round, n)
			}
		}
	}
	if len(acked) == 0 {
		t.Fatal("no child acknowledged anything; the test proved nothing")
	}
	t.Logf("%d rounds, %d acknowledged payloads, all replayed exactly once", rounds, len(acked))
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
