// Package objstore is retentiond's view of an S3-compatible object store
// (AWS S3, Ceph RGW, SeaweedFS, Garage, MinIO): the few operations the
// store, search and purge need to keep closed days in one bucket shared by
// many nodes, and the names those days have there.
//
// The durability of a day held in a bucket is the object store's job; this
// package only moves whole, immutable segment files in and out of it,
// reads them by ranges, and deletes them (every version) when the
// retention says so. It depends on nothing internal but record (for days),
// metricsx and fsutil (the range cache's file); it knows segments only by
// behaviour (Source fits segment.Source).
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// ErrExists is returned (wrapped) by PutIfAbsent when the key already
// exists: the conditional create lost the race.
var ErrExists = errors.New("object already exists")

// ObjectInfo describes one object (or, from ListVersions, one version).
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
	// VersionID is the version's id where the store gives one (a listing
	// of versions, as DeleteAll makes; Stat and Put on a versioned
	// bucket); empty otherwise.
	VersionID string
	// DeleteMarker marks a delete marker in a listing of versions.
	DeleteMarker bool
}

// Bucket is one bucket (with the configured key prefix already applied by
// the implementation: keys passed in and returned are relative to it).
// Every method honours ctx. Errors name the store (endpoint and bucket) and
// never carry credentials.
type Bucket interface {
	// Put stores size bytes read from body under key. The PUT is atomic:
	// readers see the whole object or none. The returned info is read back
	// from the store after the upload (size and checksum verified).
	Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error)
	// PutIfAbsent creates key with body only if it does not exist
	// (If-None-Match: *); ErrExists if it does.
	PutIfAbsent(ctx context.Context, key string, body []byte) error
	// ReadAt reads len(p) bytes of key at off with a range GET.
	ReadAt(ctx context.Context, key string, p []byte, off int64) error
	// Get copies the whole object to w.
	Get(ctx context.Context, key string, w io.Writer) (int64, error)
	// Stat returns the object's info, ErrNotFound if there is none.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key (the current version; on a versioned bucket this
	// leaves older versions: use DeleteAll to destroy a day).
	Delete(ctx context.Context, key string) error
	// DeleteAll removes every object and every version and delete marker
	// under prefix, then lists the prefix again (objects and versions) and
	// returns an error unless it is empty: the proof a purge reports.
	DeleteAll(ctx context.Context, prefix string) (DeleteResult, error)
	// Versioned reports whether the bucket keeps versions (enabled or
	// suspended with versions left).
	Versioned(ctx context.Context) (bool, error)
	// String names the store for errors and logs: endpoint and bucket.
	String() string
}

// DeleteResult is what DeleteAll destroyed.
type DeleteResult struct {
	Objects  int   // objects and versions deleted (delete markers not counted)
	Bytes    int64 // their sizes
	Markers  int   // delete markers removed
	Verified bool  // the prefix was listed again and found empty
}
