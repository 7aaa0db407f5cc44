// Package segment reads and writes retentiond's immutable columnar segment
// files (see docs/format.md).
package segment

// Reader is an open segment file. (Placeholder declaration so that dependent
// packages compile while the segment package is written; replaced by the real
// implementation.)
type Reader struct{}
