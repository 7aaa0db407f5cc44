package search

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// SkippedFile names what an answer leaves out: a damaged segment file, or
// (Peer set) a cluster peer that did not answer, whose data not yet in the
// bucket is then missing. Both make the answer partial, by the same
// headers, trailers and "skipped" fields.
type SkippedFile struct {
	File   string `json:"file"`   // the file's name in the data directory when the damage was found; "" for a peer
	Offset int64  `json:"offset"` // byte offset of the damage; -1 when not known
	Reason string `json:"reason"`
	// Peer names a peer that did not answer (its index in cluster.peers
	// and its base URL, which carries no credentials), or the peer whose
	// damaged File this is.
	Peer string `json:"peer,omitempty"`
}

// Skipped collects the damaged segment files a search left out. It is safe
// for concurrent use; the zero value is ready.
//
// A file is skipped whole: a search that finds a damaged block stops
// reading that file (records of its earlier blocks, each verified by its
// checksum, may already be in the answer), and the store keeps the file out
// of every later search, which names it from then on without reading it.
type Skipped struct {
	mu     sync.Mutex
	files  []SkippedFile
	report func(*segment.CorruptionError)
}

// Files returns the skipped files, sorted by name.
func (s *Skipped) Files() []SkippedFile {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.files)
	slices.SortFunc(out, func(a, b SkippedFile) int { return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.File, b.File)) })
	return out
}

func (s *Skipped) add(ce *segment.CorruptionError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.files, func(f SkippedFile) bool { return f.File == ce.File && f.Peer == "" }) {
		s.files = append(s.files, SkippedFile{File: ce.File, Offset: ce.Offset, Reason: ce.Err.Error()})
	}
}

// addFile adds a skipped entry (a peer's damaged file, or a peer that did
// not answer) unless it is already named.
func (s *Skipped) addFile(f SkippedFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.files, func(g SkippedFile) bool { return g.File == f.File && g.Peer == f.Peer }) {
		s.files = append(s.files, f)
	}
}

// skip decides what a search does with damage found in a segment file: with
// a place to report it (Request.Skipped) the file is left out, named there
// and reported to the store; without one it returns false and the search
// fails, never silently partial.
func (s *Skipped) skip(err error) bool {
	var ce *segment.CorruptionError
	if s == nil || !errors.As(err, &ce) {
		return false
	}
	s.add(ce)
	if s.report != nil {
		s.report(ce)
	}
	return true
}

// begin prepares req's search of snap: damage found while reading it is
// reported to the store behind snap, and the damaged files the store
// already knows of in those days are skipped (every one in the time range,
// even on days a limit keeps the search from reaching). Without
// Request.Skipped such a file fails the search.
func (req *Request) begin(snap *store.Snapshot) error {
	if req.Days != nil {
		snap.Days = slices.DeleteFunc(snap.Days, func(v *store.DayView) bool { return !req.Days(v.Day) })
	}
	if req.Skipped != nil {
		req.Skipped.report = snap.ReportCorrupt
	}
	for _, v := range snap.Days {
		for _, c := range v.Corrupt {
			if req.Skipped == nil {
				return fmt.Errorf("damaged segment file %s (quarantined as %s): %w", c.Err.File, c.Path, c.Err)
			}
			req.Skipped.add(c.Err)
		}
	}
	return nil
}
