package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// TestFlushCommand: `retentiond flush` asks the daemon to flush, and once it
// returns the records are in a segment file (the day lists one file, where
// before it had only unflushed records); a failing flush is an error of the
// command that names the cause.
func TestFlushCommand(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	recs := []record.Record{
		{Time: now, Domain: "shop.example.nl", Path: "/", UserAgent: "curl/8.5.0", IP: mustIP("203.0.113.7")},
		{Time: now, Domain: "shop.example.nl", Path: "/a", UserAgent: "curl/8.5.0", IP: mustIP("203.0.113.8")},
	}
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	files := func() (n int) {
		for _, d := range st.Days() {
			n += d.Files
		}
		return n
	}
	if n := files(); n != 0 {
		t.Fatalf("%d files before the flush, want 0 (flush_interval is minutes)", n)
	}

	tests := []struct {
		name    string
		flush   func() error
		wantErr string
		wantOut string
	}{
		{name: "flushes", flush: st.Flush, wantOut: "flushed"},
		{name: "failure", flush: func() error { return errors.New("rotate wal: no space left on device") },
			wantErr: "no space left on device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("POST /api/v1/admin/flush", flushHandler(tc.flush))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			out, code := cli(t, nil, "flush", "--server", srv.URL)
			if tc.wantErr != "" {
				if code == 0 || !strings.Contains(out, tc.wantErr) {
					t.Fatalf("exit %d, output %q; want a failure naming %q", code, out, tc.wantErr)
				}
				return
			}
			if code != 0 || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d, output %q; want %q", code, out, tc.wantOut)
			}
			if n := files(); n != 1 {
				t.Fatalf("%d files after the flush, want 1", n)
			}
		})
	}
}
