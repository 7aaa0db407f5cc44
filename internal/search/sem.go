package search

import (
	"container/heap"
	"context"
	"sync"
)

// prioSem is a counting semaphore that serves waiters lowest priority value
// first. A search decodes blocks of several days at once to use every
// core, but with a limit only the earliest days' blocks are certain to be
// needed: ranking each block job by (day rank, block sequence) lets the
// days ahead use a core only when the day being emitted has no block
// waiting, so look-ahead never slows the answer it is meant to speed up.
type prioSem struct {
	mu      sync.Mutex
	free    int
	waiters semQueue
}

func newPrioSem(n int) *prioSem { return &prioSem{free: max(n, 1)} }

type semWaiter struct {
	prio    uint64
	ch      chan struct{} // closed when granted
	granted bool
	index   int // in the heap, -1 once removed
}

// acquire takes a slot, waiting behind every waiter with a lower priority
// value. It returns ctx's error, without a slot, if ctx ends first.
func (s *prioSem) acquire(ctx context.Context, prio uint64) error {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := &semWaiter{prio: prio, ch: make(chan struct{})}
	heap.Push(&s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if w.granted {
			// Granted while we gave up: hand the slot on.
			s.mu.Unlock()
			s.release()
		} else {
			heap.Remove(&s.waiters, w.index)
			s.mu.Unlock()
		}
		return ctx.Err()
	}
}

// release returns a slot, granting it to the best waiter if there is one.
func (s *prioSem) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) == 0 {
		s.free++
		return
	}
	w := heap.Pop(&s.waiters).(*semWaiter)
	w.granted = true
	close(w.ch)
}

// semQueue is a min-heap of waiters by priority (container/heap).
type semQueue []*semWaiter

func (q semQueue) Len() int           { return len(q) }
func (q semQueue) Less(i, j int) bool { return q[i].prio < q[j].prio }
func (q semQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *semQueue) Push(x any) {
	w := x.(*semWaiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *semQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*q = old[:len(old)-1]
	return w
}
