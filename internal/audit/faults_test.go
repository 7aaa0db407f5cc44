package audit

import (
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// TestAuditFaultsRefuseSearch (issue 12, fault injection): whatever fails
// while the audit line is written, the search is refused and never runs
// unaudited. A failed write or fsync leaves the log refusing until a restart
// (its tail is unknown); a file that cannot be opened (EMFILE) is retried at
// the next search. After a restart the chain verifies, a torn line cut and
// the repair recorded.
func TestAuditFaultsRefuseSearch(t *testing.T) {
	for _, c := range []struct {
		name      string
		rule      fsutil.Rule
		permanent bool
	}{
		{"write ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "audit", Err: syscall.ENOSPC}, true},
		{"short write", fsutil.Rule{Op: fsutil.OpWrite, Path: "audit", Err: &fsutil.ShortWrite{Err: syscall.ENOSPC}}, true},
		{"fsync EIO", fsutil.Rule{Op: fsutil.OpSync, Path: "audit", Err: syscall.EIO}, true},
		{"open EMFILE", fsutil.Rule{Op: fsutil.OpOpen, Path: "audit", Err: syscall.EMFILE}, false},
		{"dir fsync EIO", fsutil.Rule{Op: fsutil.OpSyncDir, Path: "audit", Err: syscall.EIO}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var in fsutil.Injector
			e := newEnvFS(t, in.FS())
			in.Add(c.rule)
			q := url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-7"}, "reason": {"leak"}}
			resp, body := e.get(t, "/api/v1/search", q, e.token)
			if resp.StatusCode != 503 || strings.Contains(body, "203.0.113") || e.handled != 0 {
				t.Fatalf("with %s: status %d body %q handled %d, want 503 and no search", c.name, resp.StatusCode, body, e.handled)
			}
			in.Clear()
			resp, _ = e.get(t, "/api/v1/search", q, e.token)
			if c.permanent && (resp.StatusCode != 503 || e.handled != 0) {
				t.Fatalf("after a failed %s the log answered %d (handled %d), want 503 until restart", c.name, resp.StatusCode, e.handled)
			}
			if !c.permanent && (resp.StatusCode != 200 || e.handled != 1) {
				t.Fatalf("after %s cleared: %d, handled %d; want the search to run", c.name, resp.StatusCode, e.handled)
			}
			e.log.Close()
			l, err := Open(filepath.Join(e.dir, "audit"), Options{Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			l.Close()
			if res, err := Verify(filepath.Join(e.dir, "audit")); err != nil || res.FirstBad != nil {
				t.Fatalf("chain after restart: %v %+v", err, res.FirstBad)
			}
		})
	}
}
