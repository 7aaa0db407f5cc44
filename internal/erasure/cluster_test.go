package erasure

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/report"
	"github.com/retentiond/retentiond/internal/signing"
	"github.com/retentiond/retentiond/internal/store"
)

// clusterNode is one node of a test cluster: its store on the shared
// bucket, its eraser, and its peer endpoint behind the node token.
type clusterNode struct {
	name  string
	dir   string
	st    *store.Store
	er    *Eraser
	audit *audit.Log
	srv   *httptest.Server
}

const nodeToken = "node-token-for-tests-0123456789"

func newClusterNode(t *testing.T, name string, b objstore.Bucket, now func() time.Time, peers []string) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Now: now, Bucket: b, Node: name, FlushInterval: time.Hour,
		ListInterval: time.Hour, UploadRetryMin: time.Hour, UploadRetryMax: time.Hour, LocalCacheBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	reports, err := report.OpenDir(filepath.Join(dir, report.DirName), signing.NewKey(priv), report.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c *Cluster
	if len(peers) > 0 {
		c = &Cluster{URLs: peers, Token: nodeToken, Node: name, Timeout: 5 * time.Second}
	}
	er, err := New(dir, Options{Store: st, Audit: al, Reports: reports, Cluster: c, Node: name, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+PeerPath, authn.RequireNode(nodeToken, NodeParam, http.HandlerFunc(er.ServePeer)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &clusterNode{name: name, dir: dir, st: st, er: er, audit: al, srv: srv}
}

// ingestClosed stores recs, flushes, archives their days and uploads them.
func (n *clusterNode) ingestClosed(t *testing.T, recs []record.Record) {
	t.Helper()
	ctx := context.Background()
	if err := n.st.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := n.st.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := n.st.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
}

// countIn counts the records of addr (and all records) a node on an
// empty data directory finds in the bucket.
func countIn(t *testing.T, b objstore.Bucket, now func() time.Time, from, to time.Time, addr netip.Addr) (hits, all int) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Now: now, Bucket: b, Node: "reader", FlushInterval: time.Hour,
		ListInterval: time.Hour, UploadRetryMin: time.Hour, UploadRetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.ListBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for _, v := range snap.Days {
		for _, r := range v.Segments {
			for rec, err := range r.Iter() {
				if err != nil {
					t.Fatal(err)
				}
				all++
				if rec.IP == addr {
					hits++
				}
			}
		}
	}
	return hits, all
}

// TestEraseAcrossTheCluster: an erasure asked of node a runs on its peer
// b too (node token, b's own audit line naming node:a and the case, b's
// own report), and removes the address from both nodes' objects in the
// shared bucket. The objects of node c, which is not in cluster.peers (a
// decommissioned node), are named as not erased: the result is partial,
// never a silent success. With b down, the erasure is partial and names b.
func TestEraseAcrossTheCluster(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("rtd"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3.Close()
	b, err := objstore.New(objstore.Config{Endpoint: s3.URL, Bucket: "rtd", Region: "us-east-1",
		AccessKeyID: "AKIDTESTKEY", SecretAccessKey: "test-secret-value-42"})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return day.AddDate(0, 0, 5) }
	target := netip.MustParseAddr("203.0.113.7")
	recs := func(d, n int) []record.Record {
		var out []record.Record
		for i := range n {
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
			if i%4 == 0 {
				ip = target
			}
			out = append(out, record.Record{Time: day.AddDate(0, 0, d).Add(time.Duration(i) * time.Minute), Domain: "shop.example.nl",
				Path: "/p", UserAgent: "ua", IP: ip})
		}
		return out
	}
	nb := newClusterNode(t, "b", b, now, nil)
	na := newClusterNode(t, "a", b, now, []string{nb.srv.URL})
	nc := newClusterNode(t, "c", b, now, nil)
	na.ingestClosed(t, append(recs(0, 40), recs(1, 40)...))
	nb.ingestClosed(t, append(recs(1, 40), recs(2, 40)...))
	nc.ingestClosed(t, recs(2, 40))
	end := day.AddDate(0, 0, 3)
	if hits, all := countIn(t, b, now, day, end, target); hits != 50 || all != 200 {
		t.Fatalf("before: %d of %d records are the address's, want 50 of 200 (do the nodes upload?)", hits, all)
	}

	req := Request{IP: target.String(), Case: "GDPR-7", Reason: "Art. 17 request"}
	rep, err := na.er.Erase(context.Background(), req, Actor{Token: "admin"})
	if !errors.Is(err, ErrPartial) || rep.Result != "partial" {
		t.Fatalf("erasure with node c outside the cluster: %v, result %q; want partial", err, rep.Result)
	}
	if len(rep.Nodes) != 1 || rep.Nodes[0].Node != "b" || rep.Nodes[0].Result != "success" || rep.Nodes[0].RecordsRemoved != 20 {
		t.Fatalf("peers %+v: want b erased 20 records", rep.Nodes)
	}
	if rep.RecordsRemoved != 20 || len(rep.ObjectsDestroyed) != 2 {
		t.Fatalf("a removed %d records and destroyed %v; want 20 and its 2 objects", rep.RecordsRemoved, rep.ObjectsDestroyed)
	}
	if len(rep.NotErased) != 1 || !strings.Contains(rep.NotErased[0], "node c's object") {
		t.Fatalf("not erased %q: want node c's object named", rep.NotErased)
	}
	if hits, all := countIn(t, b, now, day, end, target); hits != 10 || all != 160 {
		t.Fatalf("after: %d of %d records are the address's, want only node c's 10 of 160", hits, all)
	}
	// b audited the forwarded erasure under the asking node and the case.
	files, _ := filepath.Glob(filepath.Join(nb.dir, "audit", "*"))
	found := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			found = found || strings.Contains(l, `"`+auth.NodePrefix+`a"`) && strings.Contains(l, `"GDPR-7"`) &&
				strings.Contains(l, string(audit.EventErasure))
			if strings.Contains(l, target.String()) {
				t.Fatalf("b's audit line holds the address: %s", l)
			}
		}
	}
	if !found {
		t.Fatalf("no erasure line of node:a with the case in b's audit log %v", files)
	}

	// b down: the erasure is partial and names b.
	nb.srv.Close()
	rep, err = na.er.Erase(context.Background(), req, Actor{Token: "admin"})
	if !errors.Is(err, ErrPartial) || rep.Result != "partial" || len(rep.Nodes) != 1 || rep.Nodes[0].Result != "not_answered" {
		t.Fatalf("with b down: %v, %+v", err, rep.Nodes)
	}
	if !strings.Contains(strings.Join(rep.NotErased, "\n"), "peer "+nb.srv.URL) {
		t.Fatalf("not erased %q does not name peer b", rep.NotErased)
	}
}
