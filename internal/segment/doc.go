// Package segment reads and writes retentiond's immutable columnar segment
// files: the on-disk form of one UTC day's records (or of a part of a day,
// written when the store flushes its in-memory head).
//
// A segment holds rows sorted by time, cut into blocks of up to
// Options.BlockRows rows. Every block stores five columns (time, IP, domain id,
// user-agent id, path), each compressed separately with zstd and protected by
// its own CRC32C, so a search decodes only the columns it needs. The footer
// holds the block directory, the domain and user-agent dictionaries, a sorted
// IP index (an exact address is a binary search, a CIDR prefix one contiguous
// range of it) and a domain → blocks index. A fixed trailer at the very end
// points at the footer, so Open reads the tail first.
//
// docs/format.md documents every byte; testdata/v1.seg is a committed fixture
// that fails the tests if the format changes by accident.
//
// Files are written once (Writer, Write) through fsutil, so a segment appears
// under its final name only when it is complete and durable, and are never
// modified afterwards. A Reader is safe for concurrent use.
package segment
