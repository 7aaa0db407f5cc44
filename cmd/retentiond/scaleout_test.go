package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/objstore/weedtest"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/search"
)

// The tests in this file run real retentiond processes against a real
// SeaweedFS (internal/objstore/weedtest), the way docs/scale-out.md says a
// cluster runs: several nodes, one bucket, cluster.peers between them. They
// run with RTD_TEST_E2E=1 only (weedtest.Start skips them otherwise).
//
// They use days long past (November 2026 and earlier), which are closed the
// moment their records arrive: a flush writes them archived at once, and the
// upload loop puts them into the bucket within a second.

// e2eClusterToken is the node token of the test clusters (cluster.token
// needs at least 32 characters).
const e2eClusterToken = "e2e-node-token-0123456789abcdefghijklmnop"

// scaleNode is one daemon of a scale-out test.
type scaleNode struct {
	name      string   // cluster.node
	peers     []string // cluster.peers (base URLs)
	retention string   // default 30y
	// flush is storage.flush_interval; default 1h, so that a flush happens
	// only when the test asks for one (POST /api/v1/admin/flush).
	flush        string
	purgeOnStart bool
}

// startScaleNode starts a daemon on dir/data with the bucket of srv.
func startScaleNode(t *testing.T, dir, addr string, srv *weedtest.Server, n scaleNode) *child {
	t.Helper()
	peers := make([]string, len(n.peers))
	for i, p := range n.peers {
		peers[i] = strconv.Quote(p)
	}
	cfg := fmt.Sprintf(`data_dir: %s
retention: %s
listen:
  http: %s
  syslog_udp: ""
  syslog_tcp: ""
storage:
  flush_interval: %s
  merge_grace: 1s
purge:
  on_start: %t
object_storage:
  endpoint: %s
  bucket: %s
  list_interval: 1s
cluster:
  node: %s
  peers: [%s]
  token: %s
  peer_timeout: 5s
log:
  level: info
`, filepath.Join(dir, "data"), cmpOr(n.retention, "30y"), addr, cmpOr(n.flush, "1h"), n.purgeOnStart,
		srv.Endpoint, srv.Bucket, n.name, strings.Join(peers, ", "), e2eClusterToken)
	d := startDaemonConfig(t, dir, addr, cfg)
	t.Cleanup(func() {
		// A node the test did not stop (it failed first): Kill answers
		// os.ErrProcessDone for one that was stopped and waited for.
		if d.cmd.Process.Kill() == nil {
			<-d.done
		}
	})
	return d
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// scaleLine is one record as NDJSON: its path carries seq, the sequence
// number the tests identify records by.
func scaleLine(seq int, ts time.Time, ua, ip string) string {
	return fmt.Sprintf(`{"time":%q,"domain":"shop%d.example.nl","path":"/s/%d","user_agent":%q,"ip":%q}`,
		ts.UTC().Format(time.RFC3339Nano), seq%7, seq, ua, ip)
}

// ingestAll sends lines in batches of 500 and fails unless every record is
// accepted.
func ingestAll(t *testing.T, addr string, lines []string) {
	t.Helper()
	for len(lines) > 0 {
		n := min(500, len(lines))
		got, err := ingestBatch(addr, lines[:n])
		if err != nil || got != n {
			t.Fatalf("ingest: %d of %d accepted, %v", got, n, err)
		}
		lines = lines[n:]
	}
}

// adminFlush asks the daemon to flush its head into segment files now.
func adminFlush(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/v1/admin/flush", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("flush: %d %s", resp.StatusCode, b)
	}
}

// storeMetric reads one of the store's unlabelled metrics (metricValue)
// and fails if the daemon does not expose it.
func storeMetric(t *testing.T, addr, name string) float64 {
	t.Helper()
	v := metricValue(t, addr, name)
	if v < 0 {
		t.Fatalf("metric %s not exposed by %s", name, addr)
	}
	return v
}

// waitUploaded waits until every day in the node's data directory is one
// archived file (no part left to merge) and the upload backlog is empty:
// then each day's final form is in the bucket. Call it after adminFlush.
func waitUploaded(t *testing.T, d *child, dataDir string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var state string
	for {
		state = dayFilesState(t, dataDir)
		if state == "" {
			days := storeMetric(t, d.addr, "retentiond_store_upload_backlog_days")
			bytes := storeMetric(t, d.addr, "retentiond_store_upload_backlog_bytes")
			if days == 0 && bytes == 0 {
				return
			}
			state = fmt.Sprintf("upload backlog: %v days, %v bytes", days, bytes)
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads not finished within %s: %s\n%s", within, state, d.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dayFilesState returns "" when every day directory holds exactly one
// segment file and it is archived, else what is not so yet.
func dayFilesState(t *testing.T, dataDir string) string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dataDir, "days", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		return "no day directory yet"
	}
	for _, dir := range dirs {
		segs, err := filepath.Glob(filepath.Join(dir, "seg-*.seg"))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 1 || !strings.HasSuffix(segs[0], ".archive.seg") {
			return fmt.Sprintf("day %s holds %d segment files %v", filepath.Base(dir), len(segs), segs)
		}
	}
	return ""
}

// waitListed waits until the node's listings of the bucket
// (retentiond_store_bucket_lists_total) reach n. It runs them in the
// background (Open never waits for the bucket), every list_interval.
func waitListed(t *testing.T, d *child, n float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for storeMetric(t, d.addr, "retentiond_store_bucket_lists_total") < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %v listings of the bucket within 60s\n%s", n, d.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// e2eQuery is the audited query string of the tests' searches.
func e2eQuery(q, from, to string) url.Values {
	return url.Values{"q": {q}, "from": {from}, "to": {to}, "case": {"E2E-SCALE"}, "reason": {"scale-out end-to-end test"}}
}

// countRecords asks GET /api/v1/count and returns the count and the
// answer's headers.
func countRecords(t *testing.T, addr, q, from, to string) (int, http.Header) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/count?" + e2eQuery(q, from, to).Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("count %q: %d %s", q, resp.StatusCode, b)
	}
	var c struct {
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Count == nil {
		t.Fatalf("count %q: answer %s: %v", q, b, err)
	}
	return *c.Count, resp.Header
}

// exportSeqs runs a full export (limit 0, NDJSON) and returns how often
// each sequence number occurs, and the answer's headers and trailers.
func exportSeqs(t *testing.T, addr, q, from, to string) (map[int]int, []string) {
	t.Helper()
	v := e2eQuery(q, from, to)
	v.Set("limit", "0")
	v.Set("format", "ndjson")
	resp, err := http.Get("http://" + addr + "/api/v1/search?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("search %q: %d %s", q, resp.StatusCode, b)
	}
	seen := map[int]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct {
			Path string `json:"path"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("search row %q: %v", sc.Text(), err)
		}
		var n int
		if _, err := fmt.Sscanf(row.Path, "/s/%d", &n); err != nil {
			t.Fatalf("unexpected path %q", row.Path)
		}
		seen[n]++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("search %q: reading the answer: %v", q, err)
	}
	skipped := append(resp.Header.Values(search.SkippedHeader), resp.Trailer.Values(search.SkippedHeader)...)
	return seen, skipped
}

// sameSeqs fails unless got holds exactly the sequence numbers of want,
// each once.
func sameSeqs(t *testing.T, what string, got map[int]int, want map[int]bool) {
	t.Helper()
	missing, extra, twice := 0, 0, 0
	example := ""
	for s := range want {
		if got[s] == 0 {
			missing++
			example = cmpOr(example, fmt.Sprintf("record %d missing", s))
		}
	}
	for s, n := range got {
		switch {
		case !want[s]:
			extra++
			example = cmpOr(example, fmt.Sprintf("record %d not expected", s))
		case n != 1:
			twice++
			example = cmpOr(example, fmt.Sprintf("record %d found %d times", s, n))
		}
	}
	if missing+extra+twice != 0 {
		t.Fatalf("%s: %d of %d records missing, %d unexpected, %d more than once (%s)", what, missing, len(want),
			extra, twice, example)
	}
}

// nodeDir is a fresh directory for one node, and its data directory.
func nodeDir(t *testing.T) (dir, data string) {
	dir = t.TempDir()
	return dir, filepath.Join(dir, "data")
}

// noLocalDays fails if the data directory holds a segment file: a node
// started on an empty directory that answers from it must have read the
// bucket.
func noLocalDays(t *testing.T, data string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(data, "days", "*", "*.seg"))
	if len(segs) != 0 {
		t.Fatalf("the node on an empty data directory holds segment files %v", segs)
	}
}

// TestScaleOutThirdNodeReadsTheBucket: two nodes, each on its own data
// directory, ingest different closed days (and one day both hold) into one
// bucket; they upload them and stop. A third node started on an empty data
// directory with the same bucket counts every record of both exactly, a
// full export holds each once, and it finds the planted addresses by exact
// IP (IPv4 and IPv6) and by /24, exactly.
func TestScaleOutThirdNodeReadsTheBucket(t *testing.T) {
	srv := weedtest.Start(t)
	start := time.Now()
	const perDay = 2000
	type plan struct {
		name string
		days []string
	}
	plans := []plan{{"node-a", []string{"2026-11-02", "2026-11-03", "2026-11-06"}},
		{"node-b", []string{"2026-11-04", "2026-11-05", "2026-11-06"}}}
	// Planted addresses: seq -> IP, on both nodes' days.
	planted := map[int]string{
		10:    "203.0.113.7", // node-a, 2026-11-02
		1500:  "203.0.113.7",
		2222:  "203.0.113.7", // node-a, 2026-11-03
		4100:  "203.0.113.9", // node-a, 2026-11-06
		6001:  "203.0.113.9", // node-b, 2026-11-04
		9999:  "203.0.113.250",
		7777:  "2001:db8:77::7", // node-b, 2026-11-05
		11000: "2001:db8:77::7",
	}
	all := map[int]bool{}
	seq := 0
	var nodes []*child
	var datas []string
	for _, p := range plans {
		dir, data := nodeDir(t)
		d := startScaleNode(t, dir, freePort(t), srv, scaleNode{name: p.name})
		var lines []string
		for _, ds := range p.days {
			day, err := record.ParseDay(ds)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < perDay; i++ {
				ip := cmpOr(planted[seq], fmt.Sprintf("198.51.100.%d", seq%250))
				if seq%3 == 0 && planted[seq] == "" {
					ip = fmt.Sprintf("2001:db8::%x", seq)
				}
				lines = append(lines, scaleLine(seq, day.Add(time.Duration(i)*(24*time.Hour/perDay)), "scaleout", ip))
				all[seq] = true
				seq++
			}
		}
		ingestAll(t, d.addr, lines)
		adminFlush(t, d.addr)
		nodes, datas = append(nodes, d), append(datas, data)
	}
	for i, d := range nodes {
		waitUploaded(t, d, datas[i], 60*time.Second)
		if err := d.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: exit after SIGTERM: %v\n%s", plans[i].name, err, d.logs())
		}
	}
	t.Logf("two nodes ingested and uploaded %d records over 5 days in %s", len(all), time.Since(start).Round(time.Millisecond))

	dir, data := nodeDir(t)
	c := startScaleNode(t, dir, freePort(t), srv, scaleNode{name: "node-c"})
	defer c.stop(syscall.SIGTERM)
	// No wait for its background listing: its first search lists the
	// bucket itself.
	const from, to = "2026-10-01", "2026-12-01"
	if n, _ := countRecords(t, c.addr, "ua:scaleout", from, to); n != len(all) {
		t.Fatalf("node-c counts %d records, want %d", n, len(all))
	}
	for _, tc := range []struct {
		from, to string
		want     int
	}{
		{"2026-11-02", "2026-11-03", perDay},
		{"2026-11-06", "2026-11-07", 2 * perDay}, // one object of each node
	} {
		if n, _ := countRecords(t, c.addr, "ua:scaleout", tc.from, tc.to); n != tc.want {
			t.Errorf("node-c counts %d records on %s, want %d", n, tc.from, tc.want)
		}
	}
	got, skipped := exportSeqs(t, c.addr, "ua:scaleout", from, to)
	if len(skipped) != 0 {
		t.Fatalf("the export says it is partial: %v", skipped)
	}
	sameSeqs(t, "node-c's full export", got, all)
	for _, tc := range []struct{ name, q string }{
		{"exact IPv4", "ip:203.0.113.7"},
		{"exact IPv4 on both nodes", "ip:203.0.113.9"},
		{"exact IPv6", "ip:2001:db8:77::7"},
		{"IPv4 /24", "ip:203.0.113.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := map[int]bool{}
			for s, ip := range planted {
				if ip == strings.TrimPrefix(tc.q, "ip:") || (tc.q == "ip:203.0.113.0/24" && strings.HasPrefix(ip, "203.0.113.")) {
					want[s] = true
				}
			}
			got, _ := exportSeqs(t, c.addr, tc.q, from, to)
			sameSeqs(t, tc.q, got, want)
		})
	}
	noLocalDays(t, data)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestScaleOutFreshDataFromPeer: node A holds a closed day, uploaded to the
// bucket, and fresh records only in its head (today, not flushed, not
// uploaded). Node B, with A in cluster.peers, finds all of them, each
// once: the fresh ones through A, the closed day from the bucket (read once,
// although A's answer and B's listing both name its object). With A
// stopped, B still finds the closed day in the bucket but none of the
// fresh records, and its answer says it is partial and names A
// (Retentiond-Skipped in the count's header and the search's header or
// trailer); the CLI prints a warning naming A.
func TestScaleOutFreshDataFromPeer(t *testing.T) {
	srv := weedtest.Start(t)
	start := time.Now()
	addrA, addrB := freePort(t), freePort(t)
	dirA, dataA := nodeDir(t)
	dirB, _ := nodeDir(t)
	a := startScaleNode(t, dirA, addrA, srv, scaleNode{name: "node-a", peers: []string{"http://" + addrB}})
	b := startScaleNode(t, dirB, addrB, srv, scaleNode{name: "node-b", peers: []string{"http://" + addrA}})
	defer b.stop(syscall.SIGTERM)

	const ip = "203.0.113.44"
	closed, fresh := map[int]bool{}, map[int]bool{}
	withIP := map[int]bool{}
	var lines []string
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 1000; i++ {
		addr := fmt.Sprintf("198.51.100.%d", i%250)
		if i%200 == 0 {
			addr = ip
			withIP[i] = true
		}
		lines = append(lines, scaleLine(i, day.Add(time.Duration(i)*time.Minute), "peer", addr))
		closed[i] = true
	}
	ingestAll(t, addrA, lines)
	adminFlush(t, addrA)
	waitUploaded(t, a, dataA, 60*time.Second)
	// node-b's own listing must have found the closed day, for the part
	// of the test with node-a stopped: two more listings, so that one
	// began after the upload.
	waitListed(t, b, storeMetric(t, addrB, "retentiond_store_bucket_lists_total")+2)

	now := time.Now().UTC().Add(-time.Minute)
	lines = lines[:0]
	for i := 1000; i < 1300; i++ {
		lines = append(lines, scaleLine(i, now.Add(time.Duration(i)*time.Millisecond), "peer", ip))
		fresh[i], withIP[i] = true, true
	}
	ingestAll(t, addrA, lines)
	all := map[int]bool{}
	for s := range closed {
		all[s] = true
	}
	for s := range fresh {
		all[s] = true
	}
	from := "2026-11-01"
	to := record.DayString(record.Day(now).AddDate(0, 0, 1))

	if n, h := countRecords(t, addrB, "ua:peer", from, to); n != len(all) || len(h.Values(search.SkippedHeader)) != 0 {
		t.Fatalf("node-b counts %d records (want %d: node-a's closed and fresh ones), skipped %v", n, len(all),
			h.Values(search.SkippedHeader))
	}
	got, skipped := exportSeqs(t, addrB, "ua:peer", from, to)
	if len(skipped) != 0 {
		t.Fatalf("node-b's search with node-a up says it is partial: %v", skipped)
	}
	sameSeqs(t, "node-b's export with node-a up", got, all)
	got, _ = exportSeqs(t, addrB, "ip:"+ip, from, to)
	sameSeqs(t, "node-b's search of the address with node-a up", got, withIP)

	namesA := func(values []string, reason string) bool {
		for _, v := range values {
			var f search.SkippedFile
			if json.Unmarshal([]byte(v), &f) == nil && f.File == "" && strings.Contains(f.Peer, "http://"+addrA) &&
				strings.Contains(f.Reason, reason) {
				return true
			}
		}
		return false
	}
	// node-a hung (SIGSTOP): its port still accepts connections, nothing
	// answers; after cluster.peer_timeout (5s) node-b answers without it.
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	n, h := countRecords(t, addrB, "ua:peer", from, to)
	if n != len(closed) || !namesA(h.Values(search.SkippedHeader), "cluster.peer_timeout") {
		t.Errorf("node-b's count with node-a hung: %d (want %d), skipped %v; want node-a named for its timeout", n,
			len(closed), h.Values(search.SkippedHeader))
	}
	t.Logf("with node-a hung, node-b answered in %s: %s", time.Since(asked).Round(time.Millisecond),
		h.Values(search.SkippedHeader))
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("node-a: exit after SIGTERM: %v\n%s", err, a.logs())
	}
	// The fresh records were only ever on node-a; its closed day is in
	// the bucket.
	n, h = countRecords(t, addrB, "ua:peer", from, to)
	if n != len(closed) {
		t.Errorf("node-b counts %d records with node-a stopped, want the %d of its uploaded day", n, len(closed))
	}
	if !namesA(h.Values(search.SkippedHeader), "did not answer") {
		t.Errorf("node-b's count with node-a stopped does not name node-a as skipped: %v", h.Values(search.SkippedHeader))
	}
	got, skipped = exportSeqs(t, addrB, "ua:peer", from, to)
	if !namesA(skipped, "did not answer") {
		t.Errorf("node-b's search with node-a stopped does not name node-a as skipped: %v", skipped)
	}
	sameSeqs(t, "node-b's export with node-a stopped", got, closed)
	cmd := exec.Command(binary(t), "search", "--server", "http://"+addrB, "--case", "E2E-SCALE", "--reason", "test",
		"--from", from, "--to", to, "--count", "ua:peer")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if !strings.Contains(stderr.String(), "warning: cluster peer http://"+addrA) || strings.TrimSpace(string(out)) != strconv.Itoa(len(closed)) {
		t.Errorf("the CLI does not warn that node-a was left out: err %v, stdout %q, stderr:\n%s", err, out, stderr.String())
	}
	t.Logf("with node-a stopped: %s: %s; the CLI (exit %v) warns: %s", search.SkippedHeader, skipped, err,
		strings.TrimSpace(stderr.String()))
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestScaleOutStoreDownWhileIngesting: the object store is killed while
// HTTP clients ingest into closed days. Ingest keeps acknowledging every
// batch, and the upload backlog metric shows days waiting. After the store
// restarts and the uploads finish (the backlog back at 0), a third node on
// an empty data directory finds every acknowledged record exactly once:
// its count and a full export equal what was acknowledged (no record lost,
// none duplicated by the re-archives and re-uploads of days that got late
// records while the store was down).
func TestScaleOutStoreDownWhileIngesting(t *testing.T) {
	srv := weedtest.Start(t)
	start := time.Now()
	dir, data := nodeDir(t)
	a := startScaleNode(t, dir, freePort(t), srv, scaleNode{name: "node-a", flush: "1s"})
	defer a.stop(syscall.SIGTERM)

	// Records 12 s apart from 2026-11-01: 7200 a day, every day long closed.
	const maxSeq = 200_000
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var (
		mu          sync.Mutex
		acked       = map[int]bool{}
		next        atomic.Int64
		errs        atomic.Int64
		ctx, cancel = context.WithCancel(context.Background())
		wg          sync.WaitGroup
	)
	// The clients stop before the test ends, also when it fails early
	// (they report through t).
	defer wg.Wait()
	defer cancel()
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(100)) - 100
				if lo >= maxSeq {
					return
				}
				lines := make([]string, 0, 100)
				for s := lo; s < lo+100; s++ {
					lines = append(lines, scaleLine(s, base.Add(time.Duration(s)*12*time.Second), "outage",
						fmt.Sprintf("198.51.100.%d", s%250)))
				}
				n, err := ingestBatch(a.addr, lines)
				if err != nil || n != len(lines) {
					errs.Add(1)
					t.Errorf("batch at %d: %d of %d accepted, %v", lo, n, len(lines), err)
					return
				}
				mu.Lock()
				for s := lo; s < lo+100; s++ {
					acked[s] = true
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	nAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	time.Sleep(3 * time.Second)
	srv.Stop()
	down := time.Now()
	before := nAcked()
	// While the store is down: the backlog shows closed days waiting.
	deadline := time.Now().Add(30 * time.Second)
	for storeMetric(t, a.addr, "retentiond_store_upload_backlog_days") == 0 ||
		storeMetric(t, a.addr, "retentiond_store_upload_backlog_bytes") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the upload backlog stayed 0 for 30s with the store down\n%s", a.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // ingest on into the outage
	backlog := storeMetric(t, a.addr, "retentiond_store_upload_backlog_days")
	during := nAcked() - before
	if during == 0 || errs.Load() != 0 {
		t.Fatalf("with the store down, %d records were acknowledged and %d batches failed", during, errs.Load())
	}
	t.Logf("store down: %d records acknowledged in %s, upload backlog %v days", during,
		time.Since(down).Round(time.Millisecond), backlog)

	srv.Restart()
	back := time.Now()
	t.Logf("store back after %s", back.Sub(down).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // ingest on after the restart
	cancel()
	wg.Wait()
	if errs.Load() != 0 {
		t.FailNow()
	}
	adminFlush(t, a.addr)
	waitUploaded(t, a, data, 120*time.Second)
	// Days that got records over several flushes were archived again and
	// uploaded under a new name; the superseded objects stay in the bucket
	// for a while, and node-c must read only the newest of each.
	b, err := objstore.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(context.Background(), "days/")
	if err != nil {
		t.Fatal(err)
	}
	days := map[string]bool{}
	for _, o := range objs {
		if day, _, _, ok := objstore.ParseSegmentKey(o.Key); ok {
			days[record.DayString(day)] = true
		}
	}
	t.Logf("%d records acknowledged in all; uploads finished %s after the store came back; the bucket holds %d objects for %d days",
		len(acked), time.Since(back).Round(time.Millisecond), len(objs), len(days))

	cdir, cdata := nodeDir(t)
	c := startScaleNode(t, cdir, freePort(t), srv, scaleNode{name: "node-c"})
	defer c.stop(syscall.SIGTERM)
	const from, to = "2026-10-01", "2026-12-06" // its first search lists the bucket
	if n, _ := countRecords(t, c.addr, "ua:outage", from, to); n != len(acked) {
		t.Fatalf("node-c counts %d records, want the %d acknowledged", n, len(acked))
	}
	got, skipped := exportSeqs(t, c.addr, "ua:outage", from, to)
	if len(skipped) != 0 {
		t.Fatalf("the export says it is partial: %v", skipped)
	}
	sameSeqs(t, "node-c's full export", got, acked)
	noLocalDays(t, cdata)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestScaleOutPurgeEmptiesTheBucket: two nodes upload to a versioned
// bucket, node A two old days and a young one, node B one of the old days
// too; the test adds a second version of an object and a delete marker under
// an old day's prefix. Node A, restarted with a shorter retention, destroys
// the old days with `retentiond purge`, whose report says each was listed
// again empty; a listing made directly (objstore for the current objects,
// an S3 client of the test's own for every version and delete marker) finds
// nothing under the expired days' prefixes, node B's objects included, and
// the young day is still there.
func TestScaleOutPurgeEmptiesTheBucket(t *testing.T) {
	srv := weedtest.Start(t)
	srv.EnableVersioning()
	start := time.Now()
	old := []string{"2024-03-10", "2024-03-11"}
	const young = "2026-11-10"
	seq := 0
	upload := func(name string, days []string) (dir, addr string) {
		dir, data := nodeDir(t)
		addr = freePort(t)
		d := startScaleNode(t, dir, addr, srv, scaleNode{name: name})
		var lines []string
		for _, ds := range days {
			day, err := record.ParseDay(ds)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 500; i++ {
				lines = append(lines, scaleLine(seq, day.Add(time.Duration(i)*time.Minute), "purge", "198.51.100.1"))
				seq++
			}
		}
		ingestAll(t, addr, lines)
		adminFlush(t, addr)
		waitUploaded(t, d, data, 60*time.Second)
		if err := d.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: exit after SIGTERM: %v\n%s", name, err, d.logs())
		}
		return dir, addr
	}
	dir, addr := upload("node-a", []string{old[0], old[1], young})
	upload("node-b", old[:1])

	ctx := context.Background()
	b, err := objstore.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	day0, _ := record.ParseDay(old[0])
	objs, err := b.List(ctx, objstore.DayPrefix(day0))
	if err != nil || len(objs) != 2 {
		t.Fatalf("day %s in the bucket: %v, %v; want one object of each node", old[0], objs, err)
	}
	// A second version of an object (the same bytes), and a delete
	// marker.
	var body strings.Builder
	if _, err := b.Get(ctx, objs[0].Key, &body); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, objs[0].Key, strings.NewReader(body.String()), int64(body.Len())); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, objstore.SegmentKey(day0, "node-x", "seg-00000001-00000001.archive.seg")); err != nil {
		t.Fatal(err)
	}
	s3 := rawS3(t, srv)
	if n := versionsUnder(t, s3, srv.Bucket, objstore.DayPrefix(day0)); n != 4 {
		t.Fatalf("%d versions and markers under %s before the purge, want 4", n, objstore.DayPrefix(day0))
	}

	// 2y: a day expires once now >= its start + 2 years + 1 day, so the
	// March 2024 days have, November 2026 has not.
	d := startScaleNode(t, dir, addr, srv, scaleNode{name: "node-a", retention: "2y"})
	defer d.stop(syscall.SIGTERM)
	out, err := exec.Command(binary(t), "purge", "--server", "http://"+addr).CombinedOutput()
	if err != nil {
		t.Fatalf("retentiond purge: %v\n%s", err, out)
	}
	for _, ds := range old {
		proof := regexp.MustCompile(`(?m)^\s+` + ds + `\s.*listed again: empty$`)
		if !proof.Match(out) {
			t.Errorf("the purge report does not name %s in the bucket with its proof:\n%s", ds, out)
		}
	}
	for _, ds := range old {
		day, _ := record.ParseDay(ds)
		if n := versionsUnder(t, s3, srv.Bucket, objstore.DayPrefix(day)); n != 0 {
			t.Errorf("day %s: %d objects, versions or delete markers left in the bucket after the purge", ds, n)
		}
		if objs, err := b.List(ctx, objstore.DayPrefix(day)); err != nil || len(objs) != 0 {
			t.Errorf("day %s: objstore lists %v, %v after the purge", ds, objs, err)
		}
	}
	yday, _ := record.ParseDay(young)
	if objs, err := b.List(ctx, objstore.DayPrefix(yday)); err != nil || len(objs) != 1 {
		t.Errorf("the young day %s in the bucket after the purge: %v, %v", young, objs, err)
	}
	if n, _ := countRecords(t, addr, "ua:purge", "2024-01-01", "2026-12-01"); n != 500 {
		t.Errorf("%d records left after the purge, want the young day's 500", n)
	}
	t.Logf("purge output:\n%s", out)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// rawS3 is an S3 client of its own for the test's independent look at the
// bucket (SeaweedFS without -s3.config takes unsigned requests).
func rawS3(t *testing.T, srv *weedtest.Server) *minio.Client {
	t.Helper()
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStatic("", "", "", credentials.SignatureAnonymous),
		BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// versionsUnder counts every object version and delete marker under
// prefix.
func versionsUnder(t *testing.T, c *minio.Client, bucket, prefix string) int {
	t.Helper()
	n := 0
	for oi := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true,
		WithVersions: true}) {
		if oi.Err != nil {
			t.Fatalf("list versions under %s: %v", prefix, oi.Err)
		}
		n++
	}
	return n
}

// TestScaleOutStoreDownAtStart: a node started on an empty data directory
// while the object store is down has never listed the bucket, so it cannot
// know which days the bucket holds: its count and the CLI's search answer
// an error naming the store, never an empty or short result.
func TestScaleOutStoreDownAtStart(t *testing.T) {
	srv := weedtest.Start(t)
	start := time.Now()
	dir, data := nodeDir(t)
	a := startScaleNode(t, dir, freePort(t), srv, scaleNode{name: "node-a"})
	day := time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC)
	var lines []string
	for i := 0; i < 1000; i++ {
		lines = append(lines, scaleLine(i, day.Add(time.Duration(i)*time.Minute), "down", "198.51.100.7"))
	}
	ingestAll(t, a.addr, lines)
	adminFlush(t, a.addr)
	waitUploaded(t, a, data, 60*time.Second)
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, a.logs())
	}
	srv.Stop()

	cdir, _ := nodeDir(t)
	c := startScaleNode(t, cdir, freePort(t), srv, scaleNode{name: "node-c"})
	defer c.stop(syscall.SIGTERM)
	resp, err := http.Get("http://" + c.addr + "/api/v1/count?" + e2eQuery("ua:down", "2026-11-01", "2026-12-01").Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(b), srv.Endpoint) {
		t.Fatalf("count on a node that never listed the bucket, the store down: %d %s; want an error naming the store",
			resp.StatusCode, b)
	}
	t.Logf("count with the store down: %d %s", resp.StatusCode, b)
	out, err := exec.Command(binary(t), "search", "--server", "http://"+c.addr, "--case", "E2E-SCALE", "--reason", "test",
		"--from", "2026-11-01", "--to", "2026-12-01", "ua:down").CombinedOutput()
	if err == nil || !strings.Contains(string(out), srv.Endpoint) {
		t.Fatalf("retentiond search on that node: %v, output:\n%s\nwant a failure naming the store", err, out)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestScaleOutNodeKilledWhileUploading: a node is killed with SIGKILL at
// random moments, three times (RTD_TEST_DAEMON_KILLS), while two HTTP clients ingest into closed
// days and it archives and uploads them. After a last restart and its
// uploads, a third node on an empty data directory finds every
// acknowledged record exactly once, and nothing that was never sent: an
// upload cut by the kill leaves no half object and no second copy (the
// node uploads again after the restart, and only its newest object of a
// day counts).
func TestScaleOutNodeKilledWhileUploading(t *testing.T) {
	srv := weedtest.Start(t)
	start := time.Now()
	dir, data := nodeDir(t)
	addr := freePort(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	acks := newAckLog()
	acked, sent := acks.acked, acks.sent
	var next atomic.Int64
	rounds := daemonKills(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for round := 0; round < rounds; round++ {
		a := startScaleNode(t, dir, addr, srv, scaleNode{name: "node-a", flush: "1s"})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					lo := int(next.Add(100)) - 100
					lines := make([]string, 0, 100)
					seqs := make([]int, 0, 100)
					for s := lo; s < lo+100; s++ {
						// 30 s apart: 2880 a day, every day long closed
						// (November 2026, then from its start again).
						lines = append(lines, scaleLine(s, base.Add(time.Duration(s%86400)*30*time.Second), "killed",
							fmt.Sprintf("198.51.100.%d", s%250)))
						seqs = append(seqs, s)
					}
					if !acks.post(t, addr, lines, seqs) {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-a.done
		cancel()
		wg.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before the kills")
	}
	a := startScaleNode(t, dir, addr, srv, scaleNode{name: "node-a", flush: "1s"})
	adminFlush(t, addr)
	waitUploaded(t, a, data, 90*time.Second)
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, a.logs())
	}

	cdir, cdata := nodeDir(t)
	c := startScaleNode(t, cdir, freePort(t), srv, scaleNode{name: "node-c"})
	defer c.stop(syscall.SIGTERM)
	got, skipped := exportSeqs(t, c.addr, "ua:killed", "2026-10-01", "2026-12-06")
	if len(skipped) != 0 {
		t.Fatalf("the export says it is partial: %v", skipped)
	}
	for s := range acked {
		if got[s] != 1 {
			t.Fatalf("acknowledged record %d found %d times", s, got[s])
		}
	}
	for s, n := range got {
		if !sent[s] || n != 1 {
			t.Fatalf("record %d found %d times (sent: %v)", s, n, sent[s])
		}
	}
	if n, _ := countRecords(t, c.addr, "ua:killed", "2026-10-01", "2026-12-06"); n != len(got) {
		t.Fatalf("node-c counts %d records, its export holds %d", n, len(got))
	}
	noLocalDays(t, cdata)
	t.Logf("%d SIGKILLs while uploading: %d acknowledged records all in the bucket once (%d stored, %d sent); total %s",
		rounds, len(acked), len(got), len(sent), time.Since(start).Round(time.Millisecond))
}
