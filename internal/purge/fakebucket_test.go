package purge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
)

// fakeBucket is an in-memory objstore.Bucket with what the purge relies on:
// versions and delete markers (when versioned), If-None-Match on
// PutIfAbsent, and faults: a store that does not answer (down) and one that
// refuses to delete versions (denyVersions, a key without
// s3:DeleteObjectVersion).
type fakeBucket struct {
	mu           sync.Mutex
	name         string
	versioned    bool
	keys         map[string][]fakeVersion // oldest first; the last is current
	seq          int
	down         bool
	denyVersions bool
	deleteAlls   int    // DeleteAll calls
	onDeleteAll  func() // called (unlocked) at each DeleteAll
}

type fakeVersion struct {
	id     string
	data   []byte
	marker bool
}

func newFakeBucket(name string, versioned bool) *fakeBucket {
	return &fakeBucket{name: name, versioned: versioned, keys: map[string][]fakeVersion{}}
}

func (f *fakeBucket) String() string { return "http://127.0.0.1:1/" + f.name }

// unreachable is the error of a store that does not answer; like the real
// bucket's errors it names the store.
func (f *fakeBucket) unreachable(op, key string) error {
	return fmt.Errorf("objstore %s: %s %s: dial tcp 127.0.0.1:1: connect: connection refused", f.String(), op, key)
}

// current returns key's current version unless it is absent or a marker.
func (f *fakeBucket) current(key string) (fakeVersion, bool) {
	vs := f.keys[key]
	if len(vs) == 0 || vs[len(vs)-1].marker {
		return fakeVersion{}, false
	}
	return vs[len(vs)-1], true
}

func (f *fakeBucket) add(key string, v fakeVersion) {
	f.seq++
	if !f.versioned {
		v.id = "null"
		if v.marker {
			delete(f.keys, key)
			return
		}
		f.keys[key] = []fakeVersion{v}
		return
	}
	v.id = "v" + strconv.Itoa(f.seq)
	f.keys[key] = append(f.keys[key], v)
}

func (f *fakeBucket) Put(_ context.Context, key string, body io.Reader, size int64) (objstore.ObjectInfo, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return objstore.ObjectInfo{}, f.unreachable("put", key)
	}
	if int64(len(b)) != size {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %d bytes, want %d", key, len(b), size)
	}
	f.add(key, fakeVersion{data: b})
	return objstore.ObjectInfo{Key: key, Size: size}, nil
}

func (f *fakeBucket) PutIfAbsent(_ context.Context, key string, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return f.unreachable("put if absent", key)
	}
	if _, ok := f.current(key); ok {
		return fmt.Errorf("objstore %s: put if absent %s: %w", f.String(), key, objstore.ErrExists)
	}
	f.add(key, fakeVersion{data: slices.Clone(body)})
	return nil
}

func (f *fakeBucket) ReadAt(_ context.Context, key string, p []byte, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.current(key)
	if !ok {
		return fmt.Errorf("read %s: %w", key, objstore.ErrNotFound)
	}
	if off+int64(len(p)) > int64(len(v.data)) {
		return fmt.Errorf("read %s: beyond the end", key)
	}
	copy(p, v.data[off:])
	return nil
}

func (f *fakeBucket) Get(_ context.Context, key string, w io.Writer) (int64, error) {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return 0, f.unreachable("get", key)
	}
	v, ok := f.current(key)
	f.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("objstore %s: get %s: %w", f.String(), key, objstore.ErrNotFound)
	}
	n, err := w.Write(v.data)
	return int64(n), err
}

func (f *fakeBucket) Stat(_ context.Context, key string) (objstore.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return objstore.ObjectInfo{}, f.unreachable("stat", key)
	}
	v, ok := f.current(key)
	if !ok {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, objstore.ErrNotFound)
	}
	return objstore.ObjectInfo{Key: key, Size: int64(len(v.data)), VersionID: v.id}, nil
}

func (f *fakeBucket) List(_ context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, f.unreachable("list", prefix)
	}
	return f.list(prefix, false), nil
}

// list lists current objects, or with versions every version and marker.
func (f *fakeBucket) list(prefix string, versions bool) []objstore.ObjectInfo {
	var out []objstore.ObjectInfo
	for k, vs := range f.keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if !versions {
			if v, ok := f.current(k); ok {
				out = append(out, objstore.ObjectInfo{Key: k, Size: int64(len(v.data))})
			}
			continue
		}
		for _, v := range vs {
			out = append(out, objstore.ObjectInfo{Key: k, Size: int64(len(v.data)), VersionID: v.id, DeleteMarker: v.marker})
		}
	}
	slices.SortFunc(out, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (f *fakeBucket) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return f.unreachable("delete", key)
	}
	if _, ok := f.current(key); ok || f.versioned {
		f.add(key, fakeVersion{marker: true})
	}
	return nil
}

func (f *fakeBucket) DeleteAll(_ context.Context, prefix string) (objstore.DeleteResult, error) {
	if f.onDeleteAll != nil {
		f.onDeleteAll()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteAlls++
	var res objstore.DeleteResult
	if f.down {
		return res, f.unreachable("delete all", prefix)
	}
	for _, v := range f.list(prefix, true) {
		if f.versioned && f.denyVersions {
			return res, &objstore.Error{Store: f.String(), Op: "delete all", Key: v.Key, Code: "AccessDenied", Status: 403}
		}
		if v.DeleteMarker {
			res.Markers++
		} else {
			res.Objects++
			res.Bytes += v.Size
		}
	}
	for k := range f.keys {
		if strings.HasPrefix(k, prefix) {
			delete(f.keys, k)
		}
	}
	res.Verified = len(f.list(prefix, true)) == 0
	return res, nil
}

func (f *fakeBucket) Versioned(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, f.unreachable("get versioning", "")
	}
	return f.versioned, nil
}

// setDown makes the store unreachable (true) or reachable again.
func (f *fakeBucket) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// versions counts the versions and markers under prefix.
func (f *fakeBucket) versions(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.list(prefix, true))
}

// read returns key's current body, or nil.
func (f *fakeBucket) read(key string) []byte {
	var b bytes.Buffer
	if _, err := f.Get(context.Background(), key, &b); err != nil {
		return nil
	}
	return b.Bytes()
}

// seed puts a segment object of node for day, then (versioned) overwrites
// it once and leaves a deleted key beside it, so that the day holds old
// versions and a delete marker as a real versioned bucket would.
func (f *fakeBucket) seed(day time.Time, node string, size int) {
	ctx := context.Background()
	key := objstore.SegmentKey(day, node, "part-1.seg")
	_, _ = f.Put(ctx, key, bytes.NewReader(make([]byte, size)), int64(size))
	if f.versioned {
		_, _ = f.Put(ctx, key, bytes.NewReader(make([]byte, size)), int64(size))
		gone := objstore.SegmentKey(day, node, "part-0.seg")
		_, _ = f.Put(ctx, gone, bytes.NewReader(make([]byte, size)), int64(size))
		_ = f.Delete(ctx, gone)
	}
}
