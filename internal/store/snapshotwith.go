package store

import (
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
)

// SnapshotOptions choose what SnapshotWith includes besides the local days.
//
// NOTE (h/cluster): this is the minimal form of the API the object-storage
// store (h/storeremote) provides, so that the cluster search compiles and
// is tested against it; without a bucket every record is this node's and
// not yet shared, so both options change nothing. h/storeremote's version
// replaces this file.
type SnapshotOptions struct {
	// Unshared asks for only this node's data not yet in the bucket: what a
	// peer asks for.
	Unshared bool
	// PeerObjects are, per answering peer (by node name), its current
	// objects; they replace the bucket listing's objects of that node.
	PeerObjects map[string][]objstore.ObjectInfo
}

// SnapshotWith is Snapshot with options (see SnapshotOptions). Without an
// object store nothing is shared: the snapshot is the local one and its
// Shared list is empty.
func (s *Store) SnapshotWith(from, to time.Time, o SnapshotOptions) (*Snapshot, error) {
	return s.Snapshot(from, to)
}

// Node returns this node's name (Options.Node).
func (s *Store) Node() string { return s.opts.Node }
