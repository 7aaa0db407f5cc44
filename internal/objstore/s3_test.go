package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/retentiond/retentiond/internal/record"
)

// fake is an in-process S3 (gofakes3 on a loopback httptest server) that
// counts the requests it serves, so that tests see what went over the
// wire rather than what the client believes it sent.
type fake struct {
	backend *s3mem.Backend
	srv     *httptest.Server
	gets    atomic.Int64 // object GETs (whole or range)
	parts   atomic.Int64 // multipart part uploads
}

func newFake(t testing.TB, buckets ...string) *fake {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	f := &fake{backend: backend}
	h := gofakes3.New(backend).Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 && len(q) == 0:
			f.gets.Add(1)
		case r.Method == http.MethodPut && q.Has("partNumber"):
			f.parts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
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

func TestPutMultipartVerified(t *testing.T) {
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{PartSize: minPartSize})
	ctx := context.Background()
	data := randBytes(t, 2*minPartSize+12345) // three parts
	path := filepath.Join(t.TempDir(), "big.seg")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	info, err := b.Put(ctx, "big", file, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || f.parts.Load() != 3 {
		t.Errorf("multipart info = %+v after %d part uploads, want 3", info, f.parts.Load())
	}
	var buf bytes.Buffer
	if _, err := b.Get(ctx, "big", &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("Get after multipart: %v", err)
	}
	// A body that cannot seek is refused above the single-PUT size (it
	// would have to be held in memory whole).
	if _, err := b.Put(ctx, "big2", bytes.NewBufferString(string(data)), int64(len(data))); err == nil || !strings.Contains(err.Error(), "seekable") {
		t.Errorf("Put of an unseekable big body = %v", err)
	}
	// A body shorter than its size is an error, and nothing is stored.
	if _, err := b.Put(ctx, "short", bytes.NewReader(data[:10]), 11); err == nil {
		t.Error("Put of a short body succeeded")
	}
	if _, err := b.Stat(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("short body left an object: %v", err)
	}
}

func TestPutIfAbsent(t *testing.T) {
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{Prefix: "p/"})
	ctx := context.Background()
	if err := b.PutIfAbsent(ctx, LeaseKey(), []byte("node-a")); err != nil {
		t.Fatal(err)
	}
	err := b.PutIfAbsent(ctx, LeaseKey(), []byte("node-b"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	var buf bytes.Buffer
	if _, err := b.Get(ctx, LeaseKey(), &buf); err != nil || buf.String() != "node-a" {
		t.Errorf("lease holds %q (%v), want the first writer's", buf.String(), err)
	}
	if err := b.Delete(ctx, LeaseKey()); err != nil {
		t.Fatal(err)
	}
	if err := b.PutIfAbsent(ctx, LeaseKey(), []byte("node-b")); err != nil {
		t.Errorf("PutIfAbsent after the lease was released: %v", err)
	}
}

func TestDeleteAll(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		name := "unversioned"
		if versioned {
			name = "versioned"
		}
		t.Run(name, func(t *testing.T) {
			f := newFake(t, "test-bucket")
			if versioned {
				if err := f.backend.SetVersioningConfiguration("test-bucket", gofakes3.VersioningConfiguration{Status: gofakes3.VersioningEnabled}); err != nil {
					t.Fatal(err)
				}
			}
			b := f.bucket(t, Config{Prefix: "rtd"})
			ctx := context.Background()
			if v, err := b.Versioned(ctx); err != nil || v != versioned {
				t.Fatalf("Versioned = %v, %v; want %v", v, err, versioned)
			}
			day := DayPrefix(mustDay(t, "2026-01-02"))
			other := DayPrefix(mustDay(t, "2026-01-03"))
			put := func(key string, n int) {
				t.Helper()
				if _, err := b.Put(ctx, key, bytes.NewReader(randBytes(t, n)), int64(n)); err != nil {
					t.Fatal(err)
				}
			}
			put(day+"a/1.seg", 100)
			put(day+"a/1.seg", 150) // a second version where versioned
			put(day+"b/1.seg", 200)
			put(day+"b/2.seg", 50)
			if err := b.Delete(ctx, day+"b/2.seg"); err != nil { // a delete marker where versioned
				t.Fatal(err)
			}
			put(other+"a/1.seg", 10)
			res, err := b.DeleteAll(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			want := DeleteResult{Objects: 2, Bytes: 350, Verified: true}
			if versioned {
				want = DeleteResult{Objects: 4, Bytes: 500, Markers: 1, Verified: true}
			}
			if res != want {
				t.Errorf("DeleteAll = %+v, want %+v", res, want)
			}
			if list, _ := b.List(ctx, day); len(list) != 0 {
				t.Errorf("objects left: %v", list)
			}
			if vs, _ := b.(*s3Bucket).list(ctx, "versions", day, true); len(vs) != 0 {
				t.Errorf("versions left: %v", vs)
			}
			if list, _ := b.List(ctx, other); len(list) != 1 {
				t.Errorf("the other day was touched: %v", list)
			}
			// Again: nothing to do, still verified.
			if res, err := b.DeleteAll(ctx, day); err != nil || res != (DeleteResult{Verified: true}) {
				t.Errorf("second DeleteAll = %+v, %v", res, err)
			}
		})
	}
}

func mustDay(t testing.TB, s string) time.Time {
	t.Helper()
	d, err := record.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCredentials checks where the signing keys come from and that an
// error quoting them (as S3's InvalidAccessKeyId does) never shows them.
func TestCredentials(t *testing.T) {
	var auth atomic.Value
	auth.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		a := r.Header.Get("Authorization")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The key in %q does not exist</Message><AWSAccessKeyId>%s</AWSAccessKeyId></Error>`, a, a)
	}))
	defer srv.Close()
	ctx := context.Background()
	t.Run("config", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
		b, err := New(Config{Endpoint: srv.URL, Bucket: "bkt", AccessKeyID: "AKIDFROMCONFIG", SecretAccessKey: "configsecret"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Stat(ctx, "k")
		if !strings.Contains(auth.Load().(string), "Credential=AKIDFROMCONFIG/") {
			t.Errorf("request not signed with the config's key: %q", auth.Load())
		}
		checkNoSecrets(t, err, b, "AKIDFROMCONFIG", "configsecret")
		err = b.ReadAt(ctx, "k", make([]byte, 3), 0) // GET errors carry the body's message
		checkNoSecrets(t, err, b, "AKIDFROMCONFIG", "configsecret")
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
		t.Setenv("AWS_SESSION_TOKEN", "envsessiontoken")
		b, err := New(Config{Endpoint: srv.URL, Bucket: "bkt"})
		if err != nil {
			t.Fatal(err)
		}
		err = b.ReadAt(ctx, "k", make([]byte, 3), 0)
		if !strings.Contains(auth.Load().(string), "Credential=AKIDFROMENV/") {
			t.Errorf("request not signed with the environment's key: %q", auth.Load())
		}
		checkNoSecrets(t, err, b, "AKIDFROMENV", "envsecret", "envsessiontoken")
	})
	t.Run("anonymous", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		b, err := New(Config{Endpoint: srv.URL, Bucket: "bkt"})
		if err != nil {
			t.Fatal(err)
		}
		_ = b.ReadAt(ctx, "k", make([]byte, 3), 0)
		if a := auth.Load().(string); a != "" {
			t.Errorf("anonymous request carries Authorization %q", a)
		}
	})
}

func checkNoSecrets(t *testing.T, err error, b Bucket, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error from a store that refuses the key")
	}
	for _, s := range secrets {
		for _, text := range []string{err.Error(), b.String(), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", err)} {
			if strings.Contains(text, s) {
				t.Errorf("%q shows the credential %q", text, s)
			}
		}
	}
}
