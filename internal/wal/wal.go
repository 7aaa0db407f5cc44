// Package wal is retentiond's write-ahead log: the place an ingested batch is
// made durable before it is acknowledged. It is a directory of numbered files,
// each a header followed by length- and CRC32C-framed payloads. Concurrent
// appenders share one write and one fsync (group commit), which is how an
// fsync per acknowledged batch stays fast. See docs/wal.md for the byte layout.
package wal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
)

const (
	magic      = "RWAL"
	version    = 1
	headerSize = 8 // magic, version byte, 3 reserved zero bytes
	frameSize  = 8 // uint32 length, uint32 CRC32C
	// MaxPayload is the largest payload Append accepts. A larger length in a
	// frame is treated as corruption, which also bounds what a damaged file
	// can make Replay allocate.
	MaxPayload = 64 << 20
	// maxGroupBytes bounds one group commit, so a burst of appenders does not
	// build one huge write.
	maxGroupBytes = 8 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrFailed is wrapped by every Append after a write or fsync failed: the
// log can no longer promise that acknowledged bytes are on disk, and
// retrying an fsync after a failure can report success for lost data.
var ErrFailed = errors.New("wal failed")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("wal closed")

// CorruptionError reports damage that is not a torn tail: data in a file
// that was complete when written no longer checks out.
type CorruptionError struct {
	File   string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal corruption in %s at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Options tune the log. The zero value selects the defaults.
type Options struct {
	// SegmentSize is the size after which appends move to a new file.
	// Default 64 MiB.
	SegmentSize int64
	// Logger receives repair reports; never payload contents.
	Logger *slog.Logger
	// Registerer receives the WAL metrics; nil means none.
	Registerer prometheus.Registerer
	// FS performs every file-system effect; the zero value is the real file
	// system, tests inject faults through it.
	FS fsutil.FS
}

type request struct {
	payloads [][]byte
	size     int
	rotate   bool
	// sync: answer only once everything written so far, this request's
	// payloads included, is fsynced (AppendAll, Sync); Write leaves it
	// unset.
	sync bool
	done chan result
}

type result struct {
	seg int
	err error
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger
	m    *metrics

	// firstNew is the index of the file Open created; files before it were
	// complete (or repaired) when the log was opened.
	firstNew int

	mu        sync.Mutex // guards closed, files and rotateErr
	closed    bool
	files     []int
	rotateErr error // why the last attempt to start a new file failed; nil once one succeeds
	reqs      chan request
	stopped   chan struct{}

	fs fsutil.FS

	// Owned by the writer goroutine.
	cur     *fsutil.Handle
	curIdx  int
	curSize int64
	// synced is how much of the current file an fsync made durable;
	// Write's frames lie between it and curSize until the next one.
	synced int64
	err    error
	buf    []byte
}

// Open opens the log in dir (creating it), repairs a torn tail of the last
// file, and starts a new file for appends.
func Open(dir string, opts Options) (*WAL, error) {
	opts.SegmentSize = cmp.Or(opts.SegmentSize, 64<<20)
	w := &WAL{
		dir:     dir,
		opts:    opts,
		log:     cmp.Or(opts.Logger, slog.Default()),
		m:       newMetrics(opts.Registerer),
		reqs:    make(chan request, 1024),
		stopped: make(chan struct{}),
		fs:      opts.FS,
	}
	if err := w.fs.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	if _, err := w.fs.SweepLeftovers(dir); err != nil {
		return nil, err
	}
	files, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	w.files = files
	if len(files) > 0 {
		if err := w.repair(files[len(files)-1]); err != nil {
			return nil, err
		}
	}
	next := 1
	if len(files) > 0 {
		next = files[len(files)-1] + 1
	}
	w.firstNew = next
	if err := w.newFile(next); err != nil {
		return nil, err
	}
	w.m.segments.Set(float64(len(w.files)))
	go w.run()
	return w, nil
}

func fileName(idx int) string { return fmt.Sprintf("%08d.wal", idx) }

func listFiles(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal dir: %w", err)
	}
	var idx []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil || n <= 0 || fileName(n) != e.Name() {
			continue
		}
		idx = append(idx, n)
	}
	slices.Sort(idx)
	return idx, nil
}

// scan walks the frames of a file's contents and calls fn for each intact
// payload. It returns the offset where intact data ends and, if that is not
// the end of the file, why.
func scan(b []byte, fn func(payload []byte) error) (int64, error) {
	if len(b) < headerSize {
		return 0, fmt.Errorf("short header (%d bytes)", len(b))
	}
	if string(b[:4]) != magic {
		return 0, fmt.Errorf("bad magic %q", b[:4])
	}
	if b[4] != version {
		return 0, fmt.Errorf("unsupported version %d", b[4])
	}
	off := headerSize
	for off < len(b) {
		if len(b)-off < frameSize {
			return int64(off), fmt.Errorf("short frame header (%d bytes)", len(b)-off)
		}
		n := binary.LittleEndian.Uint32(b[off:])
		sum := binary.LittleEndian.Uint32(b[off+4:])
		if n == 0 || n > MaxPayload {
			return int64(off), fmt.Errorf("invalid payload length %d", n)
		}
		if uint64(len(b)-off-frameSize) < uint64(n) {
			return int64(off), fmt.Errorf("payload of %d bytes runs past the end of the file", n)
		}
		payload := b[off+frameSize : off+frameSize+int(n)]
		if frameCRC(b[off:off+4], payload) != sum {
			return int64(off), errors.New("checksum mismatch")
		}
		if fn != nil {
			if err := fn(payload); err != nil {
				return int64(off), err
			}
		}
		off += frameSize + int(n)
	}
	return int64(off), nil
}

// frameCRC covers the length bytes too, so a flipped bit in a length is
// caught even when it happens to point at another plausible boundary.
func frameCRC(lenBytes, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, lenBytes)
	return crc32.Update(c, castagnoli, payload)
}

// repair cuts the last file at its last intact frame. Only the last file can
// legitimately end in a partial write: earlier files were fsynced before the
// next one was started.
func (w *WAL) repair(idx int) error {
	path := filepath.Join(w.dir, fileName(idx))
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read wal file: %w", err)
	}
	end, why := scan(b, nil)
	if why == nil {
		return nil
	}
	if end < headerSize {
		// Only a file shorter than a header whose bytes match one so far was
		// torn while being created (nothing in it was ever acknowledged), so
		// only that gets a clean header. A full-length wrong header is damage
		// or a newer format: cutting there would throw away every record of
		// the file, so it is reported instead.
		if h := header(); len(b) >= headerSize || !bytes.Equal(b, h[:len(b)]) {
			return &CorruptionError{File: path, Offset: 0, Err: why}
		}
		end = 0
	}
	w.log.Warn("wal: cut torn tail of last file", "file", fileName(idx), "offset", end,
		"dropped_bytes", int64(len(b))-end, "reason", why.Error())
	w.m.repairs.Inc()
	f, err := w.fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("repair wal file: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("repair wal file: truncate: %w", err)
	}
	if end == 0 {
		if _, err := f.WriteAt(header(), 0); err != nil {
			return fmt.Errorf("repair wal file: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("repair wal file: sync: %w", err)
	}
	return nil
}

func header() []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	h[4] = version
	return h
}

// newFile creates file idx with its header and makes it durable. Called from
// Open and from the writer goroutine. On failure nothing changes: the
// half-made file is removed (or, if even that fails, truncated by the next
// attempt, which may reuse the name because no file with a higher index than
// the current one holds data).
func (w *WAL) newFile(idx int) error {
	path := filepath.Join(w.dir, fileName(idx))
	f, err := w.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create wal file: %w", err)
	}
	undo := func(err error) error {
		f.Close()
		w.fs.RemoveFile(path)
		return err
	}
	if _, err := f.Write(header()); err != nil {
		return undo(fmt.Errorf("write wal header: %w", err))
	}
	if err := f.Sync(); err != nil {
		return undo(fmt.Errorf("sync new wal file: %w", err))
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return undo(err)
	}
	if w.cur != nil {
		w.cur.Close()
	}
	w.cur, w.curIdx, w.curSize, w.synced = f, idx, headerSize, headerSize
	w.mu.Lock()
	w.files = append(w.files, idx)
	n := len(w.files)
	w.mu.Unlock()
	w.m.segments.Set(float64(n))
	return nil
}

// rotate starts the next file from the writer goroutine. A failure here
// (EMFILE, ENOSPC, a failed fsync of the new file or the directory) puts no
// acknowledged byte at risk, since the current file stays open and intact, so
// it is not fatal: appends go on into the current file, the WAL reports
// itself degraded (Degraded), and the next group commit tries again. The
// state change is logged once each way.
func (w *WAL) rotate() error {
	err := w.newFile(w.curIdx + 1)
	w.mu.Lock()
	was := w.rotateErr
	w.rotateErr = err
	w.mu.Unlock()
	switch {
	case err != nil:
		w.m.rotationErrors.Inc()
		if was == nil {
			w.log.Warn("wal: cannot start the next file; appending to the current one and retrying",
				"file", fileName(w.curIdx), "err", err)
		}
	case was != nil:
		w.log.Info("wal: started the next file again after failures", "file", fileName(w.curIdx))
	}
	return err
}

// Degraded returns why the WAL could not start its next file the last time
// it tried, or nil. Appends still succeed while it is degraded; only the
// current file grows past its size and flushes cannot rotate.
func (w *WAL) Degraded() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rotateErr
}

// Replay calls fn with every payload in files with index >= from, in order.
// Damage in any file is a *CorruptionError naming file and offset (the torn
// tail of the last file was already cut by Open).
func (w *WAL) Replay(from int, fn func(seg int, payload []byte) error) error {
	w.mu.Lock()
	files := slices.Clone(w.files)
	w.mu.Unlock()
	for _, idx := range files {
		if idx < from {
			continue
		}
		path := filepath.Join(w.dir, fileName(idx))
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		var cbErr error
		end, why := scan(b, func(p []byte) error {
			if err := fn(idx, p); err != nil {
				cbErr = err
				return err
			}
			return nil
		})
		if cbErr != nil {
			return cbErr
		}
		if why != nil {
			return &CorruptionError{File: path, Offset: end, Err: why}
		}
	}
	return nil
}

// Append writes payload and returns once it is fsynced, with the index of
// the file that holds it.
func (w *WAL) Append(payload []byte) (int, error) {
	return w.AppendAll([][]byte{payload})
}

// AppendAll writes each payload as its own frame, all in one write and one
// fsync, and returns once they are fsynced. A write or fsync failure fails
// them together and none of them is replayed later (see Append's failure
// contract in docs/wal.md); only a crash in the middle of the write can keep
// a prefix of them, which the caller never acknowledged. A payload that is
// empty or larger than MaxPayload is refused without touching the log.
func (w *WAL) AppendAll(payloads [][]byte) (int, error) {
	return w.sendPayloads("wal append", payloads, true)
}

// Write is AppendAll without waiting for durability: it returns once the
// frames are written to the file, in order with every other append, and
// they become durable with the next fsync, which a later Sync, AppendAll or
// Rotate makes (the current file is also fsynced before the log moves to
// its next file, and at Close). A caller acknowledges them only after such
// a call returned without error: a crash before that may keep any prefix of
// them, and a failed fsync cuts them off the file (see AppendAll). The
// ingest writes each chunk of a request this way and makes the request's
// chunks durable together before answering, one fsync per request instead
// of one per chunk.
func (w *WAL) Write(payloads [][]byte) (int, error) {
	return w.sendPayloads("wal write", payloads, false)
}

// sendPayloads checks payloads (what names the caller in errors) and hands
// them to the writer; sync says whether to wait for their fsync.
func (w *WAL) sendPayloads(what string, payloads [][]byte, sync bool) (int, error) {
	size := 0
	for _, p := range payloads {
		if len(p) == 0 || len(p) > MaxPayload {
			return 0, fmt.Errorf("%s: payload of %d bytes (must be 1..%d)", what, len(p), MaxPayload)
		}
		size += len(p)
	}
	if len(payloads) == 0 {
		return 0, fmt.Errorf("%s: no payload", what)
	}
	return w.send(request{payloads: payloads, size: size, sync: sync})
}

// Sync returns once every payload written before it (Write) is fsynced. It
// fails, wrapping ErrFailed, if that fsync or an earlier write failed.
func (w *WAL) Sync() error {
	_, err := w.send(request{sync: true})
	return err
}

// Rotate finishes the current file and starts a new one. Every payload
// appended before Rotate returns is in a file with a smaller index than the
// one it returns. When the new file cannot be made (EMFILE, ENOSPC) Rotate
// returns that error, not ErrFailed: the log keeps working in the current
// file and the caller may try again.
func (w *WAL) Rotate() (int, error) { return w.send(request{rotate: true}) }

func (w *WAL) send(r request) (int, error) {
	r.done = make(chan result, 1)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	// Sending under the lock orders it before Close's channel close.
	w.reqs <- r
	w.mu.Unlock()
	res := <-r.done
	return res.seg, res.err
}

// run is the single writer: it takes every request waiting, writes the
// payloads with one write and one fsync, and answers them all.
func (w *WAL) run() {
	defer close(w.stopped)
	var group []request
	for first := range w.reqs {
		group = append(group[:0], first)
		size := first.size
	gather:
		for size < maxGroupBytes && !first.rotate {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break gather
				}
				group = append(group, r)
				size += r.size
				if r.rotate {
					break gather
				}
			default:
				break gather
			}
		}
		w.commit(group)
	}
	if w.cur != nil {
		if w.err == nil {
			// Write's last frames, which no caller was told are durable:
			// made so if they can be, as a flush would.
			if err := w.syncCur(); err != nil {
				w.log.Warn("wal: fsync at close failed", "file", fileName(w.curIdx), "err", err)
			}
		}
		w.cur.Close()
	}
}

func (w *WAL) commit(group []request) {
	answer := func(seg int, err error) {
		for _, r := range group {
			r.done <- result{seg, err}
		}
	}
	if w.err != nil {
		answer(0, fmt.Errorf("%w: %w", ErrFailed, w.err))
		return
	}
	var rotate, sync bool
	for _, r := range group {
		rotate = rotate || r.rotate
		sync = sync || r.sync
	}
	if w.curSize >= w.opts.SegmentSize {
		// What Write left unsynced in the file goes with it: later
		// fsyncs are of the next file. On a failure of the rotation
		// itself the group goes into the current file; the next group
		// commit tries again.
		if err := w.syncCur(); err != nil {
			w.failed(err)
			answer(0, fmt.Errorf("%w: %w", ErrFailed, err))
			return
		}
		w.rotate()
	}
	w.buf = w.buf[:0]
	n := 0
	for _, r := range group {
		for _, p := range r.payloads {
			var hdr [frameSize]byte
			binary.LittleEndian.PutUint32(hdr[:4], uint32(len(p)))
			binary.LittleEndian.PutUint32(hdr[4:], frameCRC(hdr[:4], p))
			w.buf = append(append(w.buf, hdr[:]...), p...)
			n++
		}
	}
	if len(w.buf) > 0 {
		if _, err := w.cur.Write(w.buf); err != nil {
			w.failed(err)
			answer(0, fmt.Errorf("%w: %w", ErrFailed, err))
			return
		}
		w.curSize += int64(len(w.buf))
		w.m.appends.Add(float64(n))
		w.m.bytes.Add(float64(len(w.buf)))
	}
	// A rotation fsyncs the file it leaves, as Sync does.
	if sync || rotate {
		if err := w.syncCur(); err != nil {
			w.failed(err)
			answer(0, fmt.Errorf("%w: %w", ErrFailed, err))
			return
		}
	}
	seg := w.curIdx
	if !rotate {
		answer(seg, nil)
		return
	}
	rerr := w.rotate()
	// Appends in this group went to the old file; a rotation answers with
	// the new one, or with why there is none.
	for _, r := range group {
		switch {
		case !r.rotate:
			r.done <- result{seg, nil}
		case rerr != nil:
			r.done <- result{0, fmt.Errorf("rotate wal: %w", rerr)}
		default:
			r.done <- result{w.curIdx, nil}
		}
	}
}

// syncCur fsyncs the current file if Write left anything in it unsynced.
func (w *WAL) syncCur() error {
	if w.synced == w.curSize {
		return nil
	}
	start := time.Now()
	if err := w.cur.Sync(); err != nil {
		return err
	}
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
	w.m.fsyncs.Inc()
	w.synced = w.curSize
	return nil
}

// failed handles a failed write or fsync. The state of the file past the
// last fsynced byte is unknown now: never write to it again, and cut what
// was written since that fsync, so that a restart does not replay batches
// whose callers were told they failed (AppendAll, Sync) or never heard that
// they were durable (Write).
func (w *WAL) failed(err error) {
	w.err = err
	w.log.Error("wal write failed; refusing further appends", "file", fileName(w.curIdx), "err", err)
	if derr := w.discard(w.synced); derr != nil {
		w.log.Error("wal: could not cut the failed write off the file; its batches may be replayed after a restart",
			"file", fileName(w.curIdx), "offset", w.synced, "err", derr)
	}
}

// discard truncates the current file back to good, the end of the last
// acknowledged group, and fsyncs the truncation. It runs after a failed
// write or fsync: the size change is durable even when the failed data pages
// were dropped, so the failed group's frames are gone from the file.
func (w *WAL) discard(good int64) error {
	if err := w.cur.Truncate(good); err != nil {
		return err
	}
	return w.cur.Sync()
}

// Truncate removes files with an index below before, except the one being
// written.
func (w *WAL) Truncate(before int) error {
	w.mu.Lock()
	var doomed []int
	keep := w.files[:0:0]
	last := 0
	if len(w.files) > 0 {
		last = w.files[len(w.files)-1]
	}
	for _, idx := range w.files {
		if idx < before && idx != last {
			doomed = append(doomed, idx)
		} else {
			keep = append(keep, idx)
		}
	}
	w.files = keep
	n := len(keep)
	w.mu.Unlock()
	w.m.segments.Set(float64(n))
	for _, idx := range doomed {
		if err := w.fs.RemoveFile(filepath.Join(w.dir, fileName(idx))); err != nil {
			return fmt.Errorf("remove wal file: %w", err)
		}
	}
	return nil
}

// Segments returns the indexes of the files in the log, ascending.
func (w *WAL) Segments() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.files)
}

// Close waits for pending appends and closes the current file.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.reqs)
	w.mu.Unlock()
	<-w.stopped
	return nil
}

var _ io.Closer = (*WAL)(nil)

// VerifyFile checks every frame of one WAL file without changing it. A
// damaged tail is reported like any other damage: only Open decides that the
// tail of the last file may be cut.
func VerifyFile(path string) (frames int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("verify wal file: %w", err)
	}
	end, why := scan(b, func([]byte) error { frames++; return nil })
	if why != nil {
		return frames, &CorruptionError{File: path, Offset: end, Err: why}
	}
	return frames, nil
}
