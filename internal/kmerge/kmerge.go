// Package kmerge merges several sorted streams into one sorted stream: the
// k-way merge behind a day's merge of segments (internal/store), a search's
// merge of a day's head and segments, and a cluster search's merge of its
// own answer with its peers' (internal/search). It is written once, here,
// so that the three cannot drift in how they order equal items: equal
// items come out in source order, which makes every merged answer
// deterministic. It depends on nothing internal.
package kmerge

// Source yields the items of one sorted stream, one per call, by address:
// ok is false once the stream is exhausted. The item must stay as it is
// until the source's next call, and no longer need to: a store merge's
// items are rows of a hundred bytes, and handing them by value copied
// each one half a dozen times on its way through the merge. An error ends
// the merge (see Merger.Next).
type Source[T any] func() (item *T, ok bool, err error)

// Merger yields the items of its sources in the order of cmp, each source
// already sorted by it; equal items come out in source order (the order
// of the sources passed to New). It holds one item per source, so its
// memory does not grow with the streams. It is not safe for concurrent
// use.
type Merger[T any] struct {
	srcs    []Source[T]
	cmp     func(a, b *T) int
	h       []entry[T] // a binary min-heap by (cmp, source index)
	started bool
	// pending: the item at the top of the heap was returned, and its
	// source is advanced by the next call of Next.
	pending bool
}

type entry[T any] struct {
	v   *T
	src int
}

// New returns a merger of srcs ordered by cmp (negative when a comes
// first). cmp must not keep the addresses it is given. Sources are first
// called by the first Next.
func New[T any](cmp func(a, b *T) int, srcs ...Source[T]) *Merger[T] {
	return &Merger[T]{srcs: srcs, cmp: cmp}
}

// Next returns the next item in order, by address; ok is false when every
// source is exhausted. The item is the source's own and stays valid until
// the next call of Next: only then is its source advanced, so a merge that
// stops after an item (a search's limit) never reads further. A source's
// error is returned as it is, and the merger must not be used after it.
func (m *Merger[T]) Next() (item *T, ok bool, err error) {
	if !m.started {
		m.started = true
		m.h = make([]entry[T], 0, len(m.srcs))
		for i, s := range m.srcs {
			v, ok, err := s()
			if err != nil {
				return nil, false, err
			}
			if ok {
				m.h = append(m.h, entry[T]{v, i})
			}
		}
		for i := len(m.h)/2 - 1; i >= 0; i-- {
			m.down(i)
		}
	} else if m.pending {
		m.pending = false
		v, more, err := m.srcs[m.h[0].src]()
		if err != nil {
			return nil, false, err
		}
		if more {
			m.h[0].v = v
		} else {
			last := len(m.h) - 1
			m.h[0] = m.h[last]
			m.h[last] = entry[T]{}
			m.h = m.h[:last]
		}
		m.down(0)
	}
	if len(m.h) == 0 {
		return nil, false, nil
	}
	m.pending = true
	return m.h[0].v, true, nil
}

// Len returns how many sources still have items (after the first Next).
func (m *Merger[T]) Len() int { return len(m.h) }

func (m *Merger[T]) less(i, j int) bool {
	c := m.cmp(m.h[i].v, m.h[j].v)
	return c < 0 || c == 0 && m.h[i].src < m.h[j].src
}

// down moves entry i towards the leaves while a child comes before it.
func (m *Merger[T]) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(m.h) {
			return
		}
		c := l
		if r := l + 1; r < len(m.h) && m.less(r, l) {
			c = r
		}
		if !m.less(c, i) {
			return
		}
		m.h[i], m.h[c] = m.h[c], m.h[i]
		i = c
	}
}

// Slice returns a Source that yields the items of s in order, by their
// address in s (for tests and for streams already held in memory).
func Slice[T any](s []T) Source[T] {
	return func() (*T, bool, error) {
		if len(s) == 0 {
			return nil, false, nil
		}
		v := &s[0]
		s = s[1:]
		return v, true, nil
	}
}
