package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

// memBucket is an in-memory objstore.Bucket with faults: down makes every
// call fail as an unreachable store would; putHook runs inside Put before
// the object becomes visible (an error from it leaves nothing, as an
// interrupted PUT does).
type memBucket struct {
	mu      sync.Mutex
	objs    map[string][]byte
	down    bool
	putHook func(ctx context.Context, key string) error
	puts    int
	deletes []string
	// old are the versions a versioned bucket keeps: an overwritten or
	// deleted object's earlier bytes stay until DeleteAll.
	old map[string][][]byte
}

func newMemBucket() *memBucket { return &memBucket{objs: map[string][]byte{}} }

var errDown = errors.New("connection refused")

func (b *memBucket) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return fmt.Errorf("object store %s: %w", b.String(), errDown)
	}
	return nil
}

func (b *memBucket) setDown(v bool) { b.mu.Lock(); b.down = v; b.mu.Unlock() }

func (b *memBucket) Put(ctx context.Context, key string, body io.Reader, size int64) (objstore.ObjectInfo, error) {
	if err := b.check(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if int64(len(data)) != size {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %d bytes, %d announced", key, len(data), size)
	}
	b.mu.Lock()
	hook := b.putHook
	b.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, key); err != nil {
			return objstore.ObjectInfo{}, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.objs[key]; ok {
		b.keepLocked(key, prev)
	}
	b.objs[key] = data
	b.puts++
	return objstore.ObjectInfo{Key: key, Size: size, ETag: fmt.Sprintf("%x", len(data))}, nil
}

func (b *memBucket) PutIfAbsent(ctx context.Context, key string, body []byte) error {
	return errors.New("not used by the store")
}

func (b *memBucket) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if err := b.check(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.objs[key]
	if !ok {
		return fmt.Errorf("%s: %w", key, objstore.ErrNotFound)
	}
	if off+int64(len(p)) > int64(len(data)) {
		return io.ErrUnexpectedEOF
	}
	copy(p, data[off:])
	return nil
}

func (b *memBucket) Get(ctx context.Context, key string, w io.Writer) (int64, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	data, ok := b.objs[key]
	b.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("%s: %w", key, objstore.ErrNotFound)
	}
	n, err := w.Write(data)
	return int64(n), err
}

func (b *memBucket) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	return objstore.ObjectInfo{}, errors.New("not used by the store")
}

func (b *memBucket) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []objstore.ObjectInfo
	for k, v := range b.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, objstore.ObjectInfo{Key: k, Size: int64(len(v))})
		}
	}
	slices.SortFunc(out, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (b *memBucket) Delete(ctx context.Context, key string) error {
	if err := b.check(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.objs[key]; ok {
		b.keepLocked(key, prev)
	}
	delete(b.objs, key)
	b.deletes = append(b.deletes, key)
	return nil
}

func (b *memBucket) keepLocked(key string, data []byte) {
	if b.old == nil {
		b.old = map[string][][]byte{}
	}
	b.old[key] = append(b.old[key], data)
}

func (b *memBucket) DeleteAll(ctx context.Context, prefix string) (objstore.DeleteResult, error) {
	if err := b.check(); err != nil {
		return objstore.DeleteResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var res objstore.DeleteResult
	for k, v := range b.objs {
		if strings.HasPrefix(k, prefix) {
			res.Objects++
			res.Bytes += int64(len(v))
			delete(b.objs, k)
			b.deletes = append(b.deletes, k)
		}
	}
	for k, vs := range b.old {
		if strings.HasPrefix(k, prefix) {
			res.Objects += len(vs)
			delete(b.old, k)
		}
	}
	res.Verified = true
	return res, nil
}

// versions returns every object's bytes and every kept earlier version's.
func (b *memBucket) versions() map[string][][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][][]byte{}
	for k, v := range b.objs {
		out[k] = append(out[k], v)
	}
	for k, vs := range b.old {
		out[k] = append(out[k], vs...)
	}
	return out
}

func (b *memBucket) Versioned(ctx context.Context) (bool, error) { return false, nil }
func (b *memBucket) String() string                              { return "mem://test-bucket" }

func (b *memBucket) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k := range b.objs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// openNode opens a store of node on dir with bucket b; the background
// loops are slowed down so that the test drives uploads and listings
// (UploadPending, ListBucket) itself.
func openNode(t *testing.T, dir, node string, b objstore.Bucket, clk *testkit.Clock, mod func(*Options)) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: reg,
		Bucket: b, Node: node, ListInterval: time.Hour, UploadRetryMin: time.Hour, UploadRetryMax: time.Hour, manual: true}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s, reg
}

// archiveDays appends the records, flushes and archives every closed day.
func archiveDays(t *testing.T, s *Store, clk *testkit.Clock, recs []record.Record) {
	t.Helper()
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
}

// dayRecs returns records seq lo..hi-1 spread over day d.
func dayRecs(d time.Time, lo, hi int) []record.Record {
	var out []record.Record
	for i := lo; i < hi; i++ {
		out = append(out, rec(d.Add(time.Duration(i%86400)*time.Second), i))
	}
	return out
}

func readLedger(t *testing.T, dir string) ledger {
	t.Helper()
	var l ledger
	b, err := os.ReadFile(filepath.Join(dir, ledgerName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func uploadsWith(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "retentiond_store_uploads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestUploadLedgerAndRestartAfterKill: a closed day's archived file is
// uploaded under the node's key with the same bytes, recorded in the
// ledger, and not uploaded twice; a node stopped in the middle of a PUT
// (nothing visible, no ledger entry) uploads the day again after restart.
func TestUploadLedgerAndRestartAfterKill(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(30 * time.Hour))
	b := newMemBucket()

	// A PUT that never finishes: the store is closed (as a kill would
	// stop it) while the PUT waits.
	dir := t.TempDir()
	entered := make(chan struct{})
	b.putHook = func(ctx context.Context, key string) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	s, reg := openNode(t, dir, "n1", b, clk, func(o *Options) { o.manual = false })
	archiveDays(t, s, clk, dayRecs(base, 0, 500))
	s.kickUpload()
	<-entered
	if d := counterValue(t, reg, "retentiond_store_upload_backlog_days"); d != 1 {
		t.Errorf("backlog during the upload: %v days, want 1", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(b.keys()) != 0 {
		t.Fatalf("an interrupted PUT left objects %v", b.keys())
	}
	if _, err := os.Stat(filepath.Join(dir, ledgerName)); err == nil && len(readLedger(t, dir).Days) != 0 {
		t.Fatal("the ledger records an upload that never finished")
	}

	b.putHook = nil
	s, reg = openNode(t, dir, "n1", b, clk, nil)
	defer s.Close()
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	files := dayFiles(t, dir, base)
	if len(files) != 1 || !isArchived(files[0]) {
		t.Fatalf("day files %v, want one archived file", files)
	}
	key := objstore.SegmentKey(base, "n1", files[0])
	if got := b.keys(); !slices.Equal(got, []string{key}) {
		t.Fatalf("bucket holds %v, want %s", got, key)
	}
	local, err := os.ReadFile(filepath.Join(DaysDir(dir), record.DayString(base), files[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(local, b.objs[key]) {
		t.Fatal("the object differs from the local file")
	}
	l := readLedger(t, dir)
	if e := l.Days[record.DayString(base)]; e.Key != key || e.File != files[0] || e.Size != int64(len(local)) {
		t.Fatalf("ledger entry %+v", e)
	}
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if b.puts != 1 || uploadsWith(t, reg, "ok") != 1 {
		t.Fatalf("%d PUTs (%v counted), want exactly 1", b.puts, uploadsWith(t, reg, "ok"))
	}
	if d := counterValue(t, reg, "retentiond_store_upload_backlog_days"); d != 0 {
		t.Fatalf("backlog after the upload: %v days", d)
	}
	if got := counterValue(t, reg, "retentiond_store_uploaded_bytes_total"); got != float64(len(local)) {
		t.Fatalf("uploaded bytes %v, want %d", got, len(local))
	}
}

// TestEvictedDayIsSearchedInTheBucket: beyond the local cache bound the
// uploaded file is removed and the day is read from the bucket with the
// same records, before and after a restart; late records of the evicted
// day download it, merge into a new archive that is uploaded, and the
// superseded object is deleted after its grace, nothing lost.
func TestEvictedDayIsSearchedInTheBucket(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(3 * 24 * time.Hour))
	b := newMemBucket()
	dir := t.TempDir()
	mod := func(o *Options) { o.LocalCacheBytes = 1; o.SupersededGrace = time.Hour }
	s, reg := openNode(t, dir, "n1", b, clk, mod)
	d2 := base.AddDate(0, 0, 1)
	archiveDays(t, s, clk, append(dayRecs(base, 0, 400), dayRecs(d2, 400, 700)...))
	want := seqRange(0, 700)
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(b.keys()); n != 2 {
		t.Fatalf("bucket holds %d objects, want 2", n)
	}
	if files := append(dayFiles(t, dir, base), dayFiles(t, dir, d2)...); len(files) != 0 {
		t.Fatalf("local files %v left beyond a 1-byte cache", files)
	}
	if got := counterValue(t, reg, "retentiond_store_evicted_files_total"); got != 2 {
		t.Fatalf("evictions %v, want 2", got)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 3)); !slices.Equal(got, want) {
		t.Fatalf("evicted days: %d records, want %d", len(got), len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, reg = openNode(t, dir, "n1", b, clk, mod)
	defer func() { s.Close() }()
	if got := collect(t, s, base, base.AddDate(0, 0, 3)); !slices.Equal(got, want) {
		t.Fatalf("after restart: %d records, want %d", len(got), len(want))
	}
	for _, in := range s.Days() {
		if !in.Remote || in.Local || in.Records == 0 {
			t.Fatalf("day info %+v, want remote only with its records", in)
		}
	}

	// Late records for the evicted first day.
	old := b.keys()[0]
	late := []record.Record{rec(base.Add(time.Hour), 700), rec(base.Add(2*time.Hour), 701)}
	if err := s.Append(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour) // the late part waits one merge grace
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	want = seqRange(0, 702)
	if got := collect(t, s, base, base.AddDate(0, 0, 3)); !slices.Equal(got, want) {
		t.Fatalf("after the late merge: %d records, want %d", len(got), len(want))
	}
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.keys(), old) {
		t.Fatal("the superseded object was deleted before its grace")
	}
	if got := counterValue(t, reg, "retentiond_store_downloaded_files_total"); got != 1 {
		t.Fatalf("downloads %v: the late merge must download the evicted archive once", got)
	}
	clk.Add(2 * time.Hour)
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(b.keys(), old) || len(b.keys()) != 2 {
		t.Fatalf("bucket holds %v: want the new archive of day 1 and day 2, the old one deleted", b.keys())
	}
	// A node that only has the bucket counts every record once.
	other, _ := openNode(t, t.TempDir(), "n9", b, clk, nil)
	defer other.Close()
	if err := other.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, other, base, base.AddDate(0, 0, 3)); !slices.Equal(got, want) {
		t.Fatalf("from the bucket alone: %d records, want %d", len(got), len(want))
	}
}

// TestThirdNodeCountsEveryNode: two nodes with their own data directories
// upload their days (one day held by both) to one bucket; a third node on
// an empty data directory lists the bucket and counts every record of
// both exactly, and lists their days as remote.
func TestThirdNodeCountsEveryNode(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(5 * 24 * time.Hour))
	b := newMemBucket()
	a, _ := openNode(t, t.TempDir(), "node-a", b, clk, nil)
	defer a.Close()
	bn, _ := openNode(t, t.TempDir(), "node-b", b, clk, nil)
	defer bn.Close()
	d1, d2, d3 := base, base.AddDate(0, 0, 1), base.AddDate(0, 0, 2)
	archiveDays(t, a, clk, append(dayRecs(d1, 0, 300), dayRecs(d2, 300, 500)...))
	archiveDays(t, bn, clk, append(dayRecs(d2, 500, 800), dayRecs(d3, 800, 1000)...))
	for _, s := range []*Store{a, bn} {
		if err := s.UploadPending(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := openNode(t, t.TempDir(), "node-c", b, clk, nil)
	defer c.Close()
	if err := c.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, c, base, base.AddDate(0, 0, 5)); !slices.Equal(got, seqRange(0, 1000)) {
		t.Fatalf("third node sees %d records, want 1000", len(got))
	}
	days := c.Days()
	if len(days) != 3 {
		t.Fatalf("third node lists %d days, want 3", len(days))
	}
	var total int64
	for _, in := range days {
		if !in.Remote || in.Local {
			t.Fatalf("day %+v, want remote only", in)
		}
		total += in.Records
	}
	if total != 1000 || days[1].Objects != 2 {
		t.Fatalf("Days counts %d records, day 2 %d objects; want 1000 and 2", total, days[1].Objects)
	}
	// The nodes themselves see each other's days too, their own once.
	if err := a.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, a, base, base.AddDate(0, 0, 5)); !slices.Equal(got, seqRange(0, 1000)) {
		t.Fatalf("node a sees %d records, want 1000", len(got))
	}
}

// TestBucketDownKeepsIngest: with the object store unreachable, appends
// are acknowledged, the store stays healthy, the backlog shows the days
// and their bytes, and a search over a day held only in the bucket is an
// error naming the store, never an empty answer. Once the store is back,
// the uploads finish: every record is in the bucket exactly once.
func TestBucketDownKeepsIngest(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(4 * 24 * time.Hour))
	b := newMemBucket()
	b.setDown(true)
	s, reg := openNode(t, t.TempDir(), "n1", b, clk, nil)
	defer s.Close()
	for i, d := range []time.Time{base, base.AddDate(0, 0, 1)} {
		archiveDays(t, s, clk, dayRecs(d, i*300, i*300+300))
	}
	if err := s.Append(ctx, dayRecs(base.AddDate(0, 0, 4), 600, 650)); err != nil {
		t.Fatalf("append with the bucket down: %v", err)
	}
	if err := s.UploadPending(ctx); !errors.Is(err, errDown) {
		t.Fatalf("upload with the bucket down: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("health with the bucket down: %v", err)
	}
	if d := counterValue(t, reg, "retentiond_store_upload_backlog_days"); d != 2 {
		t.Fatalf("backlog %v days, want 2", d)
	}
	if by := counterValue(t, reg, "retentiond_store_upload_backlog_bytes"); by <= 0 {
		t.Fatalf("backlog %v bytes", by)
	}
	if uploadsWith(t, reg, "error") == 0 {
		t.Fatal("failed uploads not counted")
	}

	b.setDown(false)
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if d := counterValue(t, reg, "retentiond_store_upload_backlog_days"); d != 0 {
		t.Fatalf("backlog %v days after the store came back", d)
	}
	c, _ := openNode(t, t.TempDir(), "n2", b, clk, nil)
	defer c.Close()
	if err := c.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, c, base, base.AddDate(0, 0, 3)); !slices.Equal(got, seqRange(0, 600)) {
		t.Fatalf("bucket holds %d records, want 600", len(got))
	}

	// Down again: a new node's listing fails, and one that knows the
	// objects but has not read their footers answers an error naming the
	// store.
	d, _ := openNode(t, t.TempDir(), "n3", b, clk, nil)
	defer d.Close()
	d.mu.Lock()
	for _, info := range mustList(t, b) {
		o := newRemoteObj(info)
		dy := d.newDayLocked(o.key)
		dy.remoteOnly = true
		dy.remote = map[string]*remoteObj{o.node: o}
		d.days[o.key] = dy
	}
	d.listed.Store(true) // as a listing would: it knows the objects
	d.mu.Unlock()
	b.setDown(true)
	if err := d.ListBucket(ctx); !errors.Is(err, errDown) {
		t.Fatalf("listing a down store: %v", err)
	}
	_, err := d.Snapshot(base, base.AddDate(0, 0, 3))
	if err == nil || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("snapshot of remote days with the store down: %v, want an error naming %s", err, b.String())
	}
	// Footers read, blocks not: the read error names the store too.
	b.setDown(false)
	snap, err := c.Snapshot(base, base.AddDate(0, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	b.setDown(true)
	var readErr error
	for _, v := range snap.Days {
		for _, r := range v.Segments {
			for _, err := range r.Iter() {
				if err != nil {
					readErr = err
					break
				}
			}
		}
	}
	if readErr == nil || !strings.Contains(readErr.Error(), b.String()) || asCorruption(readErr) != nil {
		t.Fatalf("block read with the store down: %v, want a non-corruption error naming the store", readErr)
	}
	b.setDown(false)
}

// TestSnapshotBeforeTheFirstListing: a node that has not listed the
// bucket since it started does not know which days the bucket holds. With
// the store down, its snapshot (every search, count and export) fails with
// an error naming the store instead of answering without the bucket's
// days, while a peer's unshared snapshot, which needs no listing, still
// works; once the store answers, a snapshot lists the bucket itself and
// holds every record, without waiting for the background listing.
func TestSnapshotBeforeTheFirstListing(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(4 * 24 * time.Hour))
	b := newMemBucket()
	a, _ := openNode(t, t.TempDir(), "node-a", b, clk, nil)
	defer a.Close()
	archiveDays(t, a, clk, append(dayRecs(base, 0, 300), dayRecs(base.AddDate(0, 0, 1), 300, 500)...))
	if err := a.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}

	b.setDown(true)
	c, _ := openNode(t, t.TempDir(), "node-c", b, clk, nil)
	defer c.Close()
	if err := c.Append(ctx, dayRecs(base.AddDate(0, 0, 3), 500, 520)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    SnapshotOptions
	}{
		{"whole view", SnapshotOptions{}},
		{"with peers' objects", SnapshotOptions{PeerObjects: map[string][]objstore.ObjectInfo{"node-b": nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := c.SnapshotWith(base, base.AddDate(0, 0, 4), tc.o)
			if err == nil {
				snap.Release()
				t.Fatal("snapshot before any listing, the store down: no error; an answer would lack the bucket's days")
			}
			if !errors.Is(err, errDown) || !strings.Contains(err.Error(), b.String()) {
				t.Fatalf("snapshot before any listing, the store down: %v; want the store's error naming %s", err, b.String())
			}
		})
	}
	snap, err := c.SnapshotWith(base, base.AddDate(0, 0, 4), SnapshotOptions{Unshared: true})
	if err != nil {
		t.Fatalf("a peer's unshared snapshot needs no listing: %v", err)
	}
	snap.Release()

	b.setDown(false)
	if got := collect(t, c, base, base.AddDate(0, 0, 4)); !slices.Equal(got, seqRange(0, 520)) {
		t.Fatalf("first snapshot after the store came back holds %d records, want 520", len(got))
	}
	// Listed once: a store down later leaves the known days' footers
	// readable from the registry, and the snapshot does not list again.
	b.setDown(true)
	if got := collect(t, c, base.AddDate(0, 0, 3), base.AddDate(0, 0, 4)); !slices.Equal(got, seqRange(500, 520)) {
		t.Fatalf("local day with the store down after a listing: %d records, want 20", len(got))
	}
	b.setDown(false)
}

func mustList(t *testing.T, b *memBucket) []objstore.ObjectInfo {
	t.Helper()
	infos, err := b.List(context.Background(), "days/")
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// countSnapshot counts the records of a snapshot's days.
func countSnapshot(t *testing.T, snap *Snapshot) []int {
	t.Helper()
	var seqs []int
	for _, v := range snap.Days {
		for r := range v.Head.All() {
			seqs = append(seqs, seqOf(t, r.Path))
		}
		for _, sr := range v.Segments {
			for r, err := range sr.Iter() {
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, seqOf(t, r.Path))
			}
		}
	}
	slices.Sort(seqs)
	return seqs
}

func seqOf(t *testing.T, path string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(strings.SplitN(path, "?", 2)[0], "/seq/%d", &n); err != nil {
		t.Fatalf("unexpected path %q", path)
	}
	return n
}

// TestUnsharedAndShared: a node's unshared snapshot and its Shared objects
// together hold each of its records exactly once, whatever state its days
// are in (uploaded and local, evicted, archived but not uploaded, late
// parts, head); and an asking node whose listing is stale (it still holds
// an object the node has since superseded) reads every record exactly once
// when it takes the node's objects from its answer (PeerObjects).
func TestUnsharedAndShared(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(5 * 24 * time.Hour))
	b := newMemBucket()
	dir := t.TempDir()
	n1, _ := openNode(t, dir, "n1", b, clk, func(o *Options) { o.SupersededGrace = time.Hour })
	defer n1.Close()
	d1, d2, d3, d4 := base, base.AddDate(0, 0, 1), base.AddDate(0, 0, 2), base.AddDate(0, 0, 5)
	archiveDays(t, n1, clk, append(dayRecs(d1, 0, 200), dayRecs(d2, 200, 400)...))
	if err := n1.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	// Evict d2 only.
	n1.mu.Lock()
	ref := n1.days[d2.Unix()].segs[0]
	n1.mu.Unlock()
	if ok, err := n1.evictOne(d2.Unix(), ref); !ok || err != nil {
		t.Fatalf("evict: %v %v", ok, err)
	}
	// The asker lists now: it holds n1's objects of d1 and d2.
	asker, _ := openNode(t, t.TempDir(), "n2", b, clk, nil)
	defer asker.Close()
	if err := asker.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	// d3 archived but not uploaded (bucket down for it), late records for d1
	// re-archived and uploaded (the asker's listing is now stale), a head
	// for d4.
	b.setDown(true)
	archiveDays(t, n1, clk, dayRecs(d3, 400, 500))
	b.setDown(false)
	archiveDays(t, n1, clk, []record.Record{rec(d1.Add(time.Minute), 500)})
	clk.Add(2 * time.Hour)
	if err := n1.mergeDue(); err != nil {
		t.Fatal(err)
	}
	n1.mu.Lock()
	d3ref := n1.days[d3.Unix()].segs[0]
	n1.mu.Unlock()
	if err := n1.uploadOne(ctx, upload{key: d1.Unix(), ref: n1.days[d1.Unix()].segs[0], size: n1.days[d1.Unix()].segs[0].r.Info().Bytes}); err != nil {
		t.Fatal(err)
	}
	_ = d3ref
	if err := n1.Append(ctx, dayRecs(d4, 501, 520)); err != nil {
		t.Fatal(err)
	}
	all := seqRange(0, 520)
	if got := collect(t, n1, base, base.AddDate(0, 0, 7)); !slices.Equal(got, all) {
		t.Fatalf("node's own view: %d records, want %d", len(got), len(all))
	}

	snap, err := n1.SnapshotWith(base, base.AddDate(0, 0, 7), SnapshotOptions{Unshared: true})
	if err != nil {
		t.Fatal(err)
	}
	unshared := countSnapshot(t, snap)
	shared := slices.Clone(snap.Shared)
	snap.Release()
	if len(shared) != 2 {
		t.Fatalf("Shared %v, want the objects of d1 (new archive) and d2", shared)
	}
	if want := append(seqRange(400, 500), seqRange(501, 520)...); !slices.Equal(unshared, want) {
		t.Fatalf("unshared holds %d records, want %d (d3 not uploaded, d4 head)", len(unshared), len(want))
	}
	// The asker: its own listing is stale; the answer's objects replace it.
	peer := map[string][]objstore.ObjectInfo{"n1": shared}
	snap, err = asker.SnapshotWith(base, base.AddDate(0, 0, 7), SnapshotOptions{PeerObjects: peer})
	if err != nil {
		t.Fatal(err)
	}
	fromBucket := countSnapshot(t, snap)
	snap.Release()
	got := append(fromBucket, unshared...)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Fatalf("asker: %d records from the bucket + %d unshared = %d, want each of %d exactly once",
			len(fromBucket), len(unshared), len(got), len(all))
	}
	// Without the answer the stale listing reads the superseded object.
	snap, err = asker.Snapshot(base, base.AddDate(0, 0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(countSnapshot(t, snap)); n != 400 {
		t.Errorf("stale listing: %d records, want the 400 of the old objects", n)
	}
	snap.Release()
}

// TestDeleteDayDropsRemoteAndRacingUpload: DeleteDay of a remote-only day
// drops it from Days; an upload whose PUT finishes after DeleteDay removed
// the day deletes the object it put; and the ledger forgets the day.
func TestDeleteDayDropsRemoteAndRacingUpload(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(4 * 24 * time.Hour))
	b := newMemBucket()
	other, _ := openNode(t, t.TempDir(), "n2", b, clk, nil)
	defer other.Close()
	archiveDays(t, other, clk, dayRecs(base.AddDate(0, 0, 1), 0, 100))
	if err := other.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	s, _ := openNode(t, dir, "n1", b, clk, nil)
	defer s.Close()
	if err := s.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	archiveDays(t, s, clk, dayRecs(base, 100, 200))
	if days := s.Days(); len(days) != 2 || !days[1].Remote || days[1].Local || !days[0].Local || days[0].Remote {
		t.Fatalf("days %+v: want day 1 local, day 2 remote", days)
	}
	if _, err := s.DeleteDay(ctx, base.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	if days := s.Days(); len(days) != 1 || !days[0].Day.Equal(base) {
		t.Fatalf("days after deleting the remote one: %+v", days)
	}

	// The PUT of day 1 waits until DeleteDay has removed the day.
	inPut := make(chan struct{})
	deleted := make(chan struct{})
	b.mu.Lock()
	b.putHook = func(ctx context.Context, key string) error {
		close(inPut)
		<-deleted
		return nil
	}
	b.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.UploadPending(ctx) }()
	<-inPut
	if _, err := s.DeleteDay(ctx, base); err != nil {
		t.Fatal(err)
	}
	close(deleted)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, k := range b.keys() {
		if strings.Contains(k, "/n1/") {
			t.Fatalf("the upload racing DeleteDay left %s", k)
		}
	}
	if l := readLedgerIfAny(t, dir); len(l.Days) != 0 {
		t.Fatalf("ledger still holds %v", l.Days)
	}
}

func readLedgerIfAny(t *testing.T, dir string) ledger {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, ledgerName)); err != nil {
		return ledger{}
	}
	return readLedger(t, dir)
}
