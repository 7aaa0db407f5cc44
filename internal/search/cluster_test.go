package search

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

const testNodeToken = "node-token-for-tests-0123456789abcdef"

// clusterNode is one in-process node: a store (data only in its heads),
// the search handler, and the peer endpoint behind the node token on an
// httptest server on 127.0.0.1.
type clusterNode struct {
	st    *store.Store
	h     *Handler
	srv   *httptest.Server
	peers *Peers
}

func newClusterNode(t *testing.T, name string, recs []record.Record, peerURLs []string, token string, timeout time.Duration) *clusterNode {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Node: name, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{st: st}
	if len(peerURLs) > 0 {
		n.peers = NewPeers(PeersOptions{URLs: peerURLs, Token: token, Node: name, Timeout: timeout, Registerer: prometheus.NewRegistry()})
	}
	n.h = NewHandler(Options{Source: st, DefaultLimit: 1000, Peers: n.peers,
		Now: func() time.Time { return clusterStart.AddDate(0, 0, 5) }})
	authn, err := auth.New(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+PeerPath+"{op}", authn.RequireNode(testNodeToken, NodeParam, http.HandlerFunc(n.h.ServePeer)))
	n.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(n.srv.Close)
	return n
}

var clusterStart = time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)

// clusterData makes n records 37 s apart (distinct times over two UTC
// days, so the merged order is the one order) and deals them to node A
// (every third) and node B; all is every record, for the single-node
// oracle. One path holds a byte that is not UTF-8, which must cross
// between nodes as stored.
func clusterData(t *testing.T, n int) (a, b, all []record.Record) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < n; i++ {
		r := record.Record{
			Time:      clusterStart.Add(time.Duration(i) * 37 * time.Second),
			Domain:    fmt.Sprintf("d%d.example", rng.IntN(4)),
			Path:      fmt.Sprintf("/p/%d", rng.IntN(13)),
			UserAgent: fmt.Sprintf("ua %d", rng.IntN(5)),
			IP:        netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(3)), byte(rng.IntN(40))}),
		}
		if i == 30 {
			r.Path = "/bad\xff"
		}
		if err := r.Normalize(); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
		if i%3 == 0 {
			a = append(a, r)
		} else {
			b = append(b, r)
		}
	}
	return a, b, all
}

// askNode answers a request to one of h's public endpoints.
func askNode(h http.HandlerFunc, path string, kv ...string) *http.Response {
	v := url.Values{"from": {"2026-03-27"}, "to": {"2026-03-30"}, "case": {"c-1"}, "reason": {"test"}}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", path+"?"+v.Encode(), nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClusterMatchesOneNode: node B, whose peer A holds a third of the
// records (in its head only, none in a bucket), answers every search,
// count, stats and histogram exactly as one node holding all of them does:
// A's fresh records merged in time order with B's own, in both orders,
// with and without a limit, byte for byte.
func TestClusterMatchesOneNode(t *testing.T) {
	recsA, recsB, all := clusterData(t, 6000)
	a := newClusterNode(t, "a", recsA, nil, "", 0)
	b := newClusterNode(t, "b", recsB, []string{a.srv.URL}, testNodeToken, 5*time.Second)
	oracle := newClusterNode(t, "oracle", all, nil, "", 0)
	type endpoint struct {
		name  string
		serve func(*Handler) http.HandlerFunc
		kv    []string
	}
	search := func(h *Handler) http.HandlerFunc { return h.ServeSearch }
	cases := []endpoint{
		{"search all asc", search, []string{"q", "", "limit", "0"}},
		{"search all desc", search, []string{"q", "", "limit", "0", "order", "desc"}},
		{"search limit asc", search, []string{"q", "domain:d1.example", "limit", "150"}},
		{"search limit desc", search, []string{"q", "ip:10.0.1.0/24", "limit", "77", "order", "desc"}},
		{"search csv", search, []string{"q", "ua:\"ua 3\"", "limit", "0", "format", "csv"}},
		{"count", func(h *Handler) http.HandlerFunc { return h.ServeCount }, []string{"q", "ip:10.0.2.0/24"}},
		{"count all", func(h *Handler) http.HandlerFunc { return h.ServeCount }, []string{"q", ""}},
		{"stats by domain", func(h *Handler) http.HandlerFunc { return h.ServeStats }, []string{"q", "", "by", "domain", "top", "0"}},
		{"stats by ip top", func(h *Handler) http.HandlerFunc { return h.ServeStats }, []string{"q", "domain:d2.example", "by", "ip", "top", "5"}},
		{"stats by path", func(h *Handler) http.HandlerFunc { return h.ServeStats }, []string{"q", "", "by", "path"}},
		{"stats by hour", func(h *Handler) http.HandlerFunc { return h.ServeStats }, []string{"q", "ip:10.0.0.0/24", "by", "hour"}},
		{"histogram", func(h *Handler) http.HandlerFunc { return h.ServeHistogram }, []string{"q", "", "step", "1h"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := askNode(c.serve(oracle.h), "/", c.kv...)
			got := askNode(c.serve(b.h), "/", c.kv...)
			wb, gb := body(t, want), body(t, got)
			if got.StatusCode != 200 || want.StatusCode != 200 {
				t.Fatalf("status %d (oracle %d): %s", got.StatusCode, want.StatusCode, gb)
			}
			if v := got.Header.Values(SkippedHeader); len(v) > 0 {
				t.Fatalf("answer partial: %v", v)
			}
			if gb != wb {
				t.Fatalf("cluster answer differs from one node's:\n got %.600s\nwant %.600s", gb, wb)
			}
			if len(wb) < 40 {
				t.Fatalf("answer too small to prove anything: %s", wb)
			}
		})
	}
	// The records really came from both nodes: A's alone are a third.
	if n, _ := a.h.exec.Count(context.Background(), &Request{Query: mustParse(t, ""), From: clusterStart, To: clusterStart.AddDate(0, 0, 3)}); n != int64(len(recsA)) {
		t.Fatalf("node A counts %d, want %d", n, len(recsA))
	}
}

func mustParse(t *testing.T, q string) *Query {
	t.Helper()
	p, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClusterPartial: a peer that is stopped, that does not answer within
// cluster.peer_timeout, or that refuses the node token makes B's answer
// partial, naming the peer, with B's own records still there; it is
// counted by peer index. A search that accepts no partial answer (no
// Skipped) fails instead.
func TestClusterPartial(t *testing.T) {
	recsA, recsB, _ := clusterData(t, 900)
	a := newClusterNode(t, "a", recsA, nil, "", 0)
	stopped := newClusterNode(t, "a2", recsA, nil, "", 0)
	stopped.srv.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()
	// A peer that sends its first line and some records, then dies
	// without its last line.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"node":"a3","shared":[]}`+"\n")
		line := fmt.Sprintf(`{"records":%q}`, base64.StdEncoding.EncodeToString(record.AppendBatch(nil, recsA[:5])))
		io.WriteString(w, line+"\n")
	}))
	defer cut.Close()
	cases := []struct {
		name, url, token, why string
	}{
		{"stopped", stopped.srv.URL, testNodeToken, "connection refused"},
		{"cut mid-answer", cut.URL, testNodeToken, "ended before its last line"},
		{"timeout", hung.URL, testNodeToken, "cluster.peer_timeout"},
		{"wrong token", a.srv.URL, "wrong-token-wrong-token-wrong-token!", "401"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newClusterNode(t, "b", recsB, []string{c.url}, c.token, 300*time.Millisecond)
			resp := askNode(b.h.ServeSearch, "/", "q", "", "limit", "0")
			text := body(t, resp)
			// Named in the header when known before the first record,
			// else in the trailer.
			skipped := append(resp.Header.Values(SkippedHeader), resp.Trailer.Values(SkippedHeader)...)
			if resp.StatusCode != 200 || len(skipped) != 1 || !strings.Contains(skipped[0], c.url) || !strings.Contains(skipped[0], c.why) {
				t.Fatalf("status %d, skipped %q: want the peer %s named with %q", resp.StatusCode, skipped, c.url, c.why)
			}
			wantLines := len(recsB)
			if c.url == cut.URL {
				wantLines += 5 // what it sent before it died
			}
			if lines := strings.Count(text, "\n"); lines != wantLines {
				t.Fatalf("%d records, want %d", lines, wantLines)
			}
			resp = askNode(b.h.ServeCount, "/", "q", "")
			text = body(t, resp)
			if !strings.Contains(text, fmt.Sprintf(`"count":%d`, len(recsB))) || !strings.Contains(text, `"peer":"`+c.url) {
				t.Fatalf("count answer %s: want B's count and the peer named", text)
			}
			if got := testutil.ToFloat64(b.peers.errors.WithLabelValues("0")); got != 2 {
				t.Fatalf("peer errors counted %v, want 2", got)
			}
			// Without a place to name the peer, the search fails.
			_, err := b.h.exec.Run(context.Background(), &Request{Query: mustParse(t, ""), From: clusterStart, To: clusterStart.AddDate(0, 0, 3)},
				func(record.Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), c.url) {
				t.Fatalf("Run without Skipped: err %v, want the peer named", err)
			}
		})
	}
}

// TestPeerEndpointToken: the peer endpoint refuses a missing or wrong
// node token (401) and answers the right one, whose first line names the
// node.
func TestPeerEndpointToken(t *testing.T) {
	recsA, _, _ := clusterData(t, 30)
	a := newClusterNode(t, "a", recsA, nil, "", 0)
	q := "?q=&from=2026-03-27T00:00:00Z&to=2026-03-28T00:00:00Z&node=b&case=c-1&reason=r"
	for _, c := range []struct {
		name, auth string
		status     int
	}{
		{"none", "", 401},
		{"wrong", "Bearer " + strings.Repeat("x", 36), 401},
		{"api-style basic", "Basic Yjp4", 401},
		{"right", "Bearer " + testNodeToken, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", a.srv.URL+PeerPath+"count"+q, nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			text := body(t, resp)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, text)
			}
			if c.status == 200 {
				lines := strings.Split(strings.TrimSpace(text), "\n")
				want := []string{`{"node":"a","shared":[]}`, fmt.Sprintf(`{"count":%d}`, len(recsA)), `{"done":true}`}
				if !slices.Equal(lines, want) {
					t.Fatalf("answer %q, want %q", lines, want)
				}
			}
		})
	}
}

// TestMergeGroupsBounds: merged stats by value of several nodes, each
// counted exactly or by a Space-Saving summary of a few values, keep
// every value's true count within [Count-Error, Count], are exact when
// every part is, and add the totals.
func TestMergeGroupsBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		parts := make([]StatsResult, 1+rng.IntN(3))
		truth := map[string]int64{}
		exact := true
		for i := range parts {
			maxGroups := 3 + rng.IntN(30)
			gc := newGroupCounter(maxGroups, 1<<20)
			var total int64
			for j := 0; j < rng.IntN(300); j++ {
				k := fmt.Sprintf("v%d", int(rng.ExpFloat64()*6))
				gc.add(k, 1)
				truth[k]++
				total++
			}
			parts[i] = StatsResult{Buckets: gc.buckets(), Total: total, Approximate: gc.approximate()}
			exact = exact && !gc.approximate()
		}
		res := mergeGroups(parts, 0, 100)
		var total int64
		for _, p := range parts {
			total += p.Total
		}
		if res.Total != total || res.Approximate == exact {
			t.Fatalf("round %d: total %d (want %d), approximate %v (want %v)", round, res.Total, total, res.Approximate, !exact)
		}
		for _, b := range res.Buckets {
			if tc := truth[b.Key]; tc < b.Count-b.Error || tc > b.Count {
				t.Fatalf("round %d: %s counted %d±%d, true %d", round, b.Key, b.Count, b.Error, tc)
			}
		}
		if exact && len(res.Buckets) != len(truth) {
			t.Fatalf("round %d: exact merge holds %d values, want %d", round, len(res.Buckets), len(truth))
		}
	}
}
