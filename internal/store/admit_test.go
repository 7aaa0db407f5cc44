package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
)

// TestReserveKeepsTheBound has writers reserve, append within and release
// reservations under a head bound a few batches large, while a sampler checks
// after every step that head, frozen head and reservations together never
// exceed the bound. Every batch must be stored: a reservation waits for a
// flush instead of failing with ErrBusy.
func TestReserveKeepsTheBound(t *testing.T) {
	const bound = 1 << 20
	s, err := Open(t.TempDir(), Options{HeadMaxBytes: bound, FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var over atomic.Int64
	check := func() {
		s.mu.Lock()
		if n := s.headBytes + s.frozenBytes + s.reserved; n > bound {
			over.Store(n)
		}
		s.mu.Unlock()
	}
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				check()
			}
		}
	})

	const writers, batches, perBatch = 6, 40, 200
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range writers {
		wg.Go(func() {
			for range batches {
				recs := make([]record.Record, perBatch)
				var text int64
				for i := range recs {
					recs[i] = rec(base.Add(time.Duration(seq.Add(1))*time.Second), int(seq.Load()))
					text += int64(len(recs[i].Path) + len(recs[i].Domain) + len(recs[i].UserAgent))
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				r, err := s.Reserve(ctx, s.ReserveFor(len(recs), text))
				if err != nil {
					cancel()
					t.Errorf("reserve: %v", err)
					return
				}
				check()
				err = r.Append(ctx, recs)
				check()
				r.Release()
				cancel()
				if err != nil {
					t.Errorf("append within a reservation: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if n := over.Load(); n > 0 {
		t.Fatalf("head + frozen + reserved reached %d bytes, over the %d bound", n, bound)
	}
	var total int64
	for _, d := range s.Days() {
		total += d.Records
	}
	if total != writers*batches*perBatch {
		t.Fatalf("%d records stored, want %d", total, writers*batches*perBatch)
	}
	s.mu.Lock()
	reserved := s.reserved
	s.mu.Unlock()
	if reserved != 0 {
		t.Fatalf("%d bytes still reserved after every reservation was released", reserved)
	}
}

func TestReserveRefusals(t *testing.T) {
	const bound = 1 << 20
	s, err := Open(t.TempDir(), Options{HeadMaxBytes: bound, FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(t.Context(), s.ReserveLimit()+1); !errors.Is(err, ErrReserveTooLarge) {
		t.Errorf("reserve over the limit: %v, want ErrReserveTooLarge", err)
	}
	// Fill the bound with reservations: the next one waits until its
	// context ends, and gets room as soon as one is released.
	var held []*Reservation
	for range reserveShare {
		r, err := s.Reserve(t.Context(), s.ReserveLimit())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	_, err = s.Reserve(ctx, 1)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve with the bound full: %v, want the context's deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := s.Reserve(t.Context(), 1)
		if err == nil {
			r.Release()
		}
		got <- err
	}()
	held[0].Release()
	held[0].Release() // a second Release is harmless
	if err := <-got; err != nil {
		t.Fatalf("reserve after a release: %v", err)
	}
	for _, r := range held[1:] {
		r.Release()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(t.Context(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("reserve on a closed store: %v, want ErrClosed", err)
	}
}
