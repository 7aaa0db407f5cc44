// Package segment reads and writes retentiond's immutable columnar segment
// files: the on-disk form of one UTC day's records (or of a part of a day,
// written when the store flushes its in-memory head).
//
// A segment holds rows sorted by time, cut into blocks of up to
// Options.BlockRows rows. Every block stores five columns (time, IP, domain id,
// user-agent id, path), each compressed separately with zstd and protected by
// its own CRC32C, so a search decodes only the columns it needs. The footer
// holds the block directory, the domain and user-agent dictionaries with a
// row count per entry, a sorted IP index with a row count per (address,
// block) (an exact address is a binary search, a CIDR prefix one contiguous
// range of it) and a domain → blocks index. A fixed trailer at the very end
// points at the footer, so Open reads the tail first.
//
// Searches decode blocks through a BlockView: in dictionary form, column by
// column on demand, into reused buffers, reading single rows of the id and
// path columns without decoding whole columns. ReadBlock is the simple
// per-row form for merges and verification.
//
// docs/format.md documents every byte; testdata/vN.seg are committed fixtures,
// one per version the reader accepts (1 and 2), that fail the tests if the
// format changes by accident.
//
// Files are written once (Writer, Write) through fsutil, so a segment appears
// under its final name only when it is complete and durable, and are never
// modified afterwards; a Reader maps the file read-only. A Reader is safe for
// concurrent use except for Close.
package segment
