package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// fake is an in-process S3 (gofakes3 on a loopback httptest server).
type fake struct {
	backend *s3mem.Backend
	srv     *httptest.Server
}

func newFake(t testing.TB, buckets ...string) *fake {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &fake{backend: backend, srv: srv}
}

func (f *fake) bucket(t testing.TB, cfg Config) Bucket {
	t.Helper()
	cfg.Endpoint = f.srv.URL
	if cfg.Bucket == "" {
		cfg.Bucket = "test-bucket"
	}
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDTESTKEY", "test-secret-value-42"
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPutStatReadAtGetList(t *testing.T) {
	f := newFake(t, "test-bucket")
	ctx := context.Background()
	for _, prefix := range []string{"", "tenant/rtd", "tenant/rtd/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			b := f.bucket(t, Config{Prefix: prefix})
			data := randBytes(t, 100_000)
			// A seekable body (a file, as the store uploads) and a plain reader.
			path := filepath.Join(t.TempDir(), "seg")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			file, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			bodies := map[string]io.Reader{"days/2026-01-02/a/one.seg": file, "days/2026-01-02/b/two.seg": bytes.NewBufferString(string(data))}
			for key, body := range bodies {
				info, err := b.Put(ctx, key, body, int64(len(data)))
				if err != nil {
					t.Fatalf("Put %s: %v", key, err)
				}
				if info.Key != key || info.Size != int64(len(data)) || info.ETag == "" {
					t.Errorf("Put %s info = %+v", key, info)
				}
				st, err := b.Stat(ctx, key)
				if err != nil || st.Size != int64(len(data)) || st.ETag != info.ETag || st.Key != key {
					t.Errorf("Stat %s = %+v, %v", key, st, err)
				}
				p := make([]byte, 777)
				if err := b.ReadAt(ctx, key, p, 12345); err != nil || !bytes.Equal(p, data[12345:12345+777]) {
					t.Errorf("ReadAt %s: %v (equal %v)", key, err, bytes.Equal(p, data[12345:12345+777]))
				}
				var buf bytes.Buffer
				if n, err := b.Get(ctx, key, &buf); err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
					t.Errorf("Get %s: %d, %v", key, n, err)
				}
			}
			list, err := b.List(ctx, "days/2026-01-02/")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range list {
				keys = append(keys, o.Key)
			}
			if strings.Join(keys, ",") != "days/2026-01-02/a/one.seg,days/2026-01-02/b/two.seg" {
				t.Errorf("List keys = %v", keys)
			}
			if list, _ := b.List(ctx, "days/2026-01-02/a/"); len(list) != 1 {
				t.Errorf("List of node a = %v", list)
			}
			// The prefix is applied inside: the raw bucket holds prefixed keys.
			if prefix != "" {
				raw := f.bucket(t, Config{})
				all, err := raw.List(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range all {
					if strings.HasPrefix(o.Key, "days/") && !strings.HasPrefix(o.Key, "tenant/rtd/") {
						t.Errorf("object %q written outside the prefix", o.Key)
					}
				}
			}
			for key := range bodies {
				if err := b.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestReadAtExactOrError(t *testing.T) {
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{})
	ctx := context.Background()
	data := randBytes(t, 1000)
	if _, err := b.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int64
		n    int
		ok   bool
	}{
		{"whole", 0, 1000, true},
		{"last byte", 999, 1, true},
		{"past the end", 990, 20, false},
		{"beyond", 2000, 10, false},
		{"negative", -1, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			err := b.ReadAt(ctx, "k", p, tc.off)
			if (err == nil) != tc.ok {
				t.Fatalf("ReadAt(%d, %d) = %v, want ok=%v", tc.off, tc.n, err, tc.ok)
			}
			if tc.ok && !bytes.Equal(p, data[tc.off:tc.off+int64(tc.n)]) {
				t.Error("wrong bytes")
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{Prefix: "p"})
	ctx := context.Background()
	if _, err := b.Stat(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
	if err := b.ReadAt(ctx, "missing", make([]byte, 4), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadAt: %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "missing", io.Discard); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	err := b.ReadAt(ctx, "missing", make([]byte, 4), 0)
	if !strings.Contains(err.Error(), f.srv.URL+"/test-bucket/p") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %q does not name the store and key", err)
	}
	if list, err := b.List(ctx, "nothing/"); err != nil || len(list) != 0 {
		t.Errorf("List of an empty prefix = %v, %v", list, err)
	}
	if err := b.Delete(ctx, "missing"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// A missing bucket is not a missing object.
	nb := f.bucket(t, Config{Bucket: "no-such-bucket"})
	if _, err := nb.Stat(ctx, "k"); err == nil {
		t.Error("Stat in a missing bucket succeeded")
	}
	if err := nb.ReadAt(ctx, "k", make([]byte, 1), 0); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("ReadAt in a missing bucket: %v, want an error that is not ErrNotFound", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no scheme", Config{Endpoint: "127.0.0.1:8333", Bucket: "b"}, "http"},
		{"ftp", Config{Endpoint: "ftp://h", Bucket: "b"}, "http"},
		{"path", Config{Endpoint: "http://h/b", Bucket: "b"}, "no path"},
		{"user info", Config{Endpoint: "http://AKIDSECRET:hunter2@h", Bucket: "b"}, "user info"},
		{"no bucket", Config{Endpoint: "http://h"}, "bucket"},
		{"half credentials", Config{Endpoint: "http://h", Bucket: "b", AccessKeyID: "AKIDSECRET"}, "without the other"},
		{"small part", Config{Endpoint: "http://h", Bucket: "b", PartSize: 1 << 20}, "part size"},
		{"ca on http", Config{Endpoint: "http://h", Bucket: "b", CAFile: "/dev/null"}, "ca file"},
		{"ca missing", Config{Endpoint: "https://h", Bucket: "b", CAFile: "/nonexistent/ca.pem"}, "ca file"},
		{"slash prefix", Config{Endpoint: "http://h", Bucket: "b", Prefix: "/x"}, "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tc.want)
			}
			for _, secret := range []string{"AKIDSECRET", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a credential", err)
				}
			}
		})
	}
}
