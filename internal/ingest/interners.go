package ingest

import (
	"sync"

	"github.com/retentiond/retentiond/internal/parse"
)

// maxIdleInterners bounds the Interners kept between requests: one per
// shipper posting at once in the common case, and at most this many
// times parse's per-Interner bound of memory held while no request runs.
const maxIdleInterners = 4

// interners keeps the parse.Interners of finished NDJSON requests for the
// next ones. A request with a fresh Interner made its own copy of every
// domain and user agent, checked and lower-cased every domain again, and
// the heads and the WAL's batch encoder, which recognise a string by its
// address, met every one of them as new: in issue 15's peer benchmark,
// 100 batches of 50,000 lines with about 6,000 distinct domains and user
// agents each. (A sync.Pool would do, but the collector empties it every
// cycle or two, and the head's memory limit makes cycles frequent.)
type interners struct {
	mu   sync.Mutex
	idle []*parse.Interner
}

// get returns an Interner of an earlier request, or a new one.
func (p *interners) get() *parse.Interner {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		in := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		return in
	}
	return new(parse.Interner)
}

// put keeps in for a later request, unless it grew past what is worth
// keeping (parse.Interner.Reusable: a body of unique values) or enough are
// kept already.
func (p *interners) put(in *parse.Interner) {
	if !in.Reusable() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < maxIdleInterners {
		p.idle = append(p.idle, in)
	}
}
