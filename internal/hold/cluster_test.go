package hold

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/testkit"
)

// memBucket is an unversioned in-memory bucket that can be made to fail.
type memBucket struct {
	mu   sync.Mutex
	objs map[string][]byte
	down bool
}

var errDown = errors.New("connection refused")

func (b *memBucket) check() error {
	if b.down {
		return fmt.Errorf("mem://bucket: %w", errDown)
	}
	return nil
}

func (b *memBucket) Put(_ context.Context, key string, body io.Reader, size int64) (objstore.ObjectInfo, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	b.objs[key] = data
	return objstore.ObjectInfo{Key: key, Size: int64(len(data))}, nil
}

func (b *memBucket) PutIfAbsent(ctx context.Context, key string, body []byte) error {
	b.mu.Lock()
	_, ok := b.objs[key]
	b.mu.Unlock()
	if ok {
		return objstore.ErrExists
	}
	_, err := b.Put(ctx, key, bytes.NewReader(body), int64(len(body)))
	return err
}

func (b *memBucket) ReadAt(context.Context, string, []byte, int64) error {
	return errors.New("not used")
}

func (b *memBucket) Get(_ context.Context, key string, w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return 0, err
	}
	d, ok := b.objs[key]
	if !ok {
		return 0, objstore.ErrNotFound
	}
	n, err := w.Write(d)
	return int64(n), err
}

func (b *memBucket) Stat(_ context.Context, key string) (objstore.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	d, ok := b.objs[key]
	if !ok {
		return objstore.ObjectInfo{}, objstore.ErrNotFound
	}
	return objstore.ObjectInfo{Key: key, Size: int64(len(d))}, nil
}

func (b *memBucket) List(_ context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return nil, err
	}
	var out []objstore.ObjectInfo
	for k, d := range b.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, objstore.ObjectInfo{Key: k, Size: int64(len(d))})
		}
	}
	slices.SortFunc(out, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (b *memBucket) Delete(_ context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	delete(b.objs, key)
	return nil
}

func (b *memBucket) DeleteAll(ctx context.Context, prefix string) (objstore.DeleteResult, error) {
	objs, err := b.List(ctx, prefix)
	if err != nil {
		return objstore.DeleteResult{}, err
	}
	var res objstore.DeleteResult
	for _, o := range objs {
		if err := b.Delete(ctx, o.Key); err != nil {
			return res, err
		}
		res.Objects++
		res.Bytes += o.Size
	}
	left, err := b.List(ctx, prefix)
	res.Verified = err == nil && len(left) == 0
	return res, err
}

func (b *memBucket) Versioned(context.Context) (bool, error) { return false, b.check() }
func (b *memBucket) String() string                          { return "mem://bucket" }

func openNode(t *testing.T, node string, b objstore.Bucket, clk *testkit.Clock) *Registry {
	t.Helper()
	dir := t.TempDir()
	al, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	r, err := Open(filepath.Join(dir, DirName), Options{Audit: al, Now: clk.Now, Logger: quiet, Bucket: b, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHoldsAcrossTheCluster: a hold placed on node a keeps its days from
// node b's purge of the shared bucket; released, the next purge destroys
// them. A hold that cannot reach the bucket is refused, and a purge that
// cannot read the cluster's holds destroys nothing in the bucket.
func TestHoldsAcrossTheCluster(t *testing.T) {
	clk := testkit.NewClock(time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC))
	b := &memBucket{objs: map[string][]byte{}}
	a := openNode(t, "a", b, clk)
	nb := openNode(t, "b", b, clk)
	for _, d := range []string{"2024-02-27", "2024-02-28"} {
		key := objstore.SegmentKey(day(t, d), "a", "seg-1-1.archive.seg")
		b.objs[key] = []byte("segment")
	}
	h, err := a.Add(Request{Case: "INC-7", From: "2024-02-28", To: "2024-02-28", Reason: "leak", Until: "2026-06-01"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := nb.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := nb.HeldBy(day(t, "2024-02-28")); !slices.Equal(got, []string{"a/" + h.ID}) {
		t.Fatalf("node b: HeldBy = %v, want node a's hold", got)
	}

	st, err := store.Open(t.TempDir(), store.Options{Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sched, err := purge.NewScheduler(purge.Options{Store: st, Policy: purge.Policy{Retention: policy.Retention{Days: 30}},
		Now: clk.Now, Logger: quiet, Holds: nb, Bucket: b, Node: "b"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2024, 4, 1, 0, 5, 0, 0, time.UTC))
	left := func() []string {
		objs, _ := b.List(context.Background(), "days/")
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys
	}
	// The bucket down when the purge starts: nothing in it is destroyed.
	b.down = true
	if _, err := sched.RunNow(context.Background(), false); err == nil {
		t.Fatal("a purge that could not read the cluster's holds succeeded")
	}
	b.down = false
	if _, err := sched.RunNow(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := left(); !slices.Equal(got, []string{objstore.SegmentKey(day(t, "2024-02-28"), "a", "seg-1-1.archive.seg")}) {
		t.Fatalf("after node b's purge the bucket holds %v, want only the day node a's hold keeps", got)
	}
	if _, err := a.Release(h.ID, "case closed", admin); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2024, 4, 2, 0, 5, 0, 0, time.UTC)) // the next day's cutoff: a new run record
	if _, err := sched.RunNow(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 0 {
		t.Fatalf("after the release the bucket still holds %v", got)
	}

	// A hold that cannot be copied to the bucket is refused, on this node too.
	b.down = true
	if _, err := a.Add(Request{Case: "INC-8", From: "2024-03-01", To: "2024-03-01", Reason: "leak", Until: "2026-06-01"}, admin); err == nil {
		t.Fatal("a hold that could not reach the bucket was placed")
	}
	if n := len(a.List()); n != 1 {
		t.Fatalf("node a lists %d holds after the refused one, want 1 (the released)", n)
	}
	b.down = false
}
