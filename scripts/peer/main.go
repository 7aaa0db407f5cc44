//go:build linux

// Command peer compares retentiond with VictoriaLogs on the same records, on
// this machine, in one run: the peer benchmark of issue 15. It is what
// `scripts/bench peer` runs; see docs/performance.md.
//
//	go run ./scripts/peer                    # 5M records over 10 days, 100 batches, 2 clients
//	go run ./scripts/peer -n 500000          # a quick run (same shape, fewer records)
//	go run ./scripts/peer -baseline old-rtd  # this build against an older one, no VictoriaLogs
//
// It builds ./cmd/retentiond and ./cmd/loggen, builds VictoriaLogs from its Go
// module once per machine (cached in $HOME/.cache/retentiond-bench/, keyed by
// version, OS and architecture), generates the NDJSON batches with loggen,
// and then, one server at a time on a loopback port with a fresh data
// directory, posts every batch (-clients at a time, a refused batch retried
// after half a second), asks the server to flush, and waits until its CPU
// time stops growing, so that the CPU figure includes the flushes and merges
// the ingest caused. The servers are retentiond (default settings) and
// VictoriaLogs in two layouts: no stream fields (one stream) and one stream
// per domain; retentiond and the no-stream layout are ingested -ingests
// times in alternation (fresh data each time) and their medians reported,
// with the CPU ratio of every pair. All three then stay up, and the query set runs round-robin
// across them (-rounds times, the median is reported), so that every query
// is measured on each server in the same minutes. The counts must agree, or
// the command fails.
//
// CPU is utime+stime of the server process from /proc/<pid>/stat, peak RSS
// is VmHWM from /proc/<pid>/status, both read after the ingest has settled
// and before any query.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The newest VictoriaLogs the Go module proxy serves (issue 15); override
// with -vl-version.
const defaultVLVersion = "v1.52.1"

const vlModule = "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"

// clkTck is the kernel's clock tick for /proc/<pid>/stat times; 100 on
// every Linux platform Go supports.
const clkTck = 100

func main() {
	n := flag.Int("n", 5_000_000, "records")
	days := flag.Int("days", 10, "UTC days the records spread over")
	seed := flag.Int("seed", 1, "loggen seed")
	batches := flag.Int("batches", 100, "NDJSON batches (POST bodies) the records are split into")
	clients := flag.Int("clients", 2, "batches posted at a time")
	rounds := flag.Int("rounds", 5, "runs of each query per server (the median is reported)")
	ingests := flag.Int("ingests", 3, "ingests into retentiond and VictoriaLogs' no-stream layout, alternating, each on a fresh data directory (the medians are reported, with the CPU ratio of each pair)")
	vlVersion := flag.String("vl-version", defaultVLVersion, "VictoriaLogs version to build with go install")
	settleMax := flag.Duration("settle", 3*time.Minute, "longest wait for a server's CPU to go idle after the ingest")
	keep := flag.Bool("keep", false, "keep the temporary directory (data, batches, server logs)")
	bin := flag.String("bin", "", "retentiond binary to measure (default: go build ./cmd/retentiond), e.g. an older build for a baseline")
	baseline := flag.String("baseline", "", "compare -bin (or this tree's build) with this older retentiond binary instead of with VictoriaLogs: ingest only, in alternating runs")
	runs := flag.Int("runs", 5, "with -baseline: runs of each build")
	flag.Parse()
	log.SetFlags(0)
	if *n <= 0 || *days <= 0 || *batches <= 0 || *clients <= 0 || *rounds <= 0 || *runs <= 0 || *ingests <= 0 {
		log.Fatal("-n, -days, -batches, -clients, -rounds, -runs and -ingests must be positive")
	}

	tmp, err := os.MkdirTemp("", "retentiond-peer")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		log.Printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	rtdBin := *bin
	if rtdBin == "" {
		rtdBin = filepath.Join(tmp, "retentiond")
		run("go", "build", "-o", rtdBin, "./cmd/retentiond")
	}
	loggen := filepath.Join(tmp, "loggen")
	run("go", "build", "-o", loggen, "./cmd/loggen")
	var vlBin string
	if *baseline == "" {
		if vlBin, err = victoriaLogs(*vlVersion); err != nil {
			log.Fatal(err)
		}
	}

	// The records end two days ago, so that every day is closed (past the
	// merge grace) by the end of the ingest, as in the run, and lie
	// well inside both servers' retention.
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -*days-2)
	from, to := start, start.AddDate(0, 0, *days)
	log.Printf("generating %d records over %d days from %s in %d batches", *n, *days, start.Format(time.DateOnly), *batches)
	files, ndjsonBytes, zstdBytes, sample := generate(tmp, loggen, *n, *days, *seed, *batches, start)
	if *baseline != "" {
		compareBuilds(os.Stdout, tmp, rtdBin, *baseline, files, *clients, *runs, *settleMax)
		return
	}

	servers := []*server{
		newRetentiond(tmp, rtdBin),
		newVictoriaLogs(tmp, vlBin, "VictoriaLogs, no streams", ""),
		newVictoriaLogs(tmp, vlBin, "VictoriaLogs, stream per domain", "domain"),
	}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	// The CPU ratio to the no-stream layout is the figure the machine's
	// drift moves most (the VM runs faster and slower by a fifth over a
	// day, VictoriaLogs' CPU between 20 and 30 s): the two are ingested
	// -ingests times in alternation, so that each pair shares its
	// minutes, and the medians are reported. The last ingest of each
	// stays up for the queries; the stream layout is ingested once.
	for i := range *ingests {
		for _, s := range servers[:2] {
			if i < *ingests-1 {
				s.ingestOnce(filepath.Join(tmp, fmt.Sprintf("%s-%d", filepath.Base(s.dir), i)), files, *clients, *settleMax)
				continue
			}
			s.ingestKept(files, *clients, *settleMax)
		}
	}
	for _, s := range servers[2:] {
		s.ingestKept(files, *clients, *settleMax)
	}
	for _, s := range servers {
		s.useMedians()
	}

	queries := querySet(sample)
	for _, s := range servers {
		s.lat = make(map[string][]time.Duration)
		s.counts = make(map[string]int64)
	}
	for r := 0; r < *rounds; r++ {
		for _, q := range queries {
			for _, s := range servers {
				t0 := time.Now()
				c, err := s.query(q, from, to)
				d := time.Since(t0)
				if err != nil {
					log.Fatalf("%s: %s: %v", s.name, q.name, err)
				}
				s.lat[q.name] = append(s.lat[q.name], d)
				if prev, ok := s.counts[q.name]; ok && prev != c {
					log.Fatalf("%s: %s: count %d, earlier %d", s.name, q.name, c, prev)
				}
				s.counts[q.name] = c
			}
		}
	}
	mismatch := false
	for _, q := range queries {
		for _, s := range servers[1:] {
			if s.counts[q.name] != servers[0].counts[q.name] {
				log.Printf("MISMATCH %s: %s %d, %s %d", q.name, servers[0].name, servers[0].counts[q.name], s.name, s.counts[q.name])
				mismatch = true
			}
		}
	}
	for _, s := range servers {
		s.stop()
	}
	report(os.Stdout, servers, queries, *n, *batches, *clients, ndjsonBytes, zstdBytes, *vlVersion)
	reportIngests(os.Stdout, servers[0], servers[1])
	if mismatch {
		log.Fatal("the servers disagree on a count (see MISMATCH above)")
	}
}

// victoriaLogs returns the path of the VictoriaLogs binary of version v,
// building it with go install into the per-machine cache when missing.
func victoriaLogs(v string) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("home directory for the cache: %w", err)
	}
	cache := filepath.Join(home, ".cache", "retentiond-bench")
	bin := filepath.Join(cache, fmt.Sprintf("victoria-logs-%s-%s-%s", v, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	gobin, err := os.MkdirTemp(cache, "build-")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return "", err
		}
		gobin, err = os.MkdirTemp(cache, "build-")
	}
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gobin)
	log.Printf("building VictoriaLogs %s (once per machine, cached in %s)", v, cache)
	cmd := exec.Command("go", "install", vlModule+"@"+v)
	// cgo stays as the toolchain defaults: VictoriaLogs uses cgo zstd
	// (gozstd) when a C compiler is present, as its release builds do.
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", vlModule, v, err)
	}
	if err := os.Rename(filepath.Join(gobin, "victoria-logs"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// sampleRecords are the values the queries look for, taken from the data.
type sampleRecords struct {
	ip    string // a busy client address
	net24 string // the /24 with the most distinct addresses
}

// generate writes the batches of NDJSON lines as files and returns their
// paths, the total NDJSON size, its size compressed with zstd -3 and the
// query samples. loggen's output is
// split by lines, n/batches lines per file.
func generate(tmp, loggen string, n, days, seed, batches int, start time.Time) ([]string, int64, int64, sampleRecords) {
	cmd := exec.Command(loggen, "-n", strconv.Itoa(n), "-days", strconv.Itoa(days), "-seed", strconv.Itoa(seed),
		"-start", start.Format(time.DateOnly), "-format", "ndjson")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	per := (n + batches - 1) / batches
	var (
		files []string
		total int64
		w     *bufio.Writer
		f     *os.File
		ipN   = map[string]int{}
		zcnt  countWriter
	)
	// The size baseline of issue 15: zstd level 3 of the same NDJSON, one
	// stream (klauspost's SpeedDefault is zstd's level 3).
	zw, err := zstd.NewWriter(&zcnt, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		if i%per == 0 {
			if f != nil {
				closeBatch(f, w)
			}
			f, err = os.Create(filepath.Join(tmp, fmt.Sprintf("batch%03d.ndjson", len(files))))
			if err != nil {
				log.Fatal(err)
			}
			files = append(files, f.Name())
			w = bufio.NewWriterSize(f, 1<<20)
		}
		line := sc.Bytes()
		total += int64(len(line)) + 1
		w.Write(line)
		w.WriteByte('\n')
		zw.Write(line)
		zw.Write([]byte{'\n'})
		// The busiest address of the first 200k records is the exact-IP
		// sample; its /24 the network sample.
		if i < 200_000 {
			var r struct {
				IP string `json:"ip"`
			}
			if json.Unmarshal(line, &r) == nil && strings.Count(r.IP, ".") == 3 {
				ipN[r.IP]++
			}
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	closeBatch(f, w)
	if err := cmd.Wait(); err != nil {
		log.Fatalf("loggen: %v", err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	var s sampleRecords
	nets := map[string]int{}
	for ip, c := range ipN {
		if s.ip == "" || c > ipN[s.ip] || c == ipN[s.ip] && ip < s.ip {
			s.ip = ip
		}
		a := strings.Split(ip, ".")
		nets[strings.Join(a[:3], ".")+".0/24"]++
	}
	for n, c := range nets {
		if s.net24 == "" || c > nets[s.net24] || c == nets[s.net24] && n < s.net24 {
			s.net24 = n
		}
	}
	return files, total, zcnt.n, s
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func closeBatch(f *os.File, w *bufio.Writer) {
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// query is one query of the set, in both servers' languages. Each gives a
// figure both servers must agree on: a count, the number of groups of a
// grouping (by), or the number of rows of a search for the first rows
// records in time order.
type query struct {
	name string
	rtd  string // retentiond query (q=)
	vl   string // LogsQL filter
	by   string // group by this field: the figure is the number of groups
	rows int    // return the first rows matches in time order: the figure is the rows received
}

// querySet is the query set: an exact IP, its /24, a user-agent
// substring, and a count by domain over everything.
func querySet(s sampleRecords) []query {
	return []query{
		{name: "count exact IP", rtd: "ip:" + s.ip, vl: `ip:="` + s.ip + `"`},
		{name: "1000 rows exact IP", rtd: "ip:" + s.ip, vl: `ip:="` + s.ip + `"`, rows: 1000},
		{name: "count IP /24", rtd: "ip:" + s.net24, vl: `ip:ipv4_range("` + s.net24 + `")`},
		{name: "1000 rows IP /24", rtd: "ip:" + s.net24, vl: `ip:ipv4_range("` + s.net24 + `")`, rows: 1000},
		{name: "count UA substring (sqlmap)", rtd: "ua:*sqlmap*", vl: `user_agent:~"sqlmap"`},
		{name: "1000 rows UA substring", rtd: "ua:*sqlmap*", vl: `user_agent:~"sqlmap"`, rows: 1000},
		{name: "count path (/wp-login.php)", rtd: "path:/wp-login.php", vl: `path:="/wp-login.php"`},
		{name: "count by domain, all groups", rtd: "", vl: "*", by: "domain"},
	}
}

// server is one server under test and its figures.
type server struct {
	name    string
	kind    string // "retentiond" or "vl"
	streams string // VictoriaLogs stream fields
	bin     string
	dir     string
	addr    string
	cmd     *exec.Cmd
	logf    *os.File

	wall    time.Duration
	cpu     float64     // seconds, utime+stime
	hwm     int64       // bytes
	ingests []ingestRun // every ingest of this server, the kept one last
	disk    int64       // bytes of the data directory after the ingest
	refused atomic.Int64
	notes   string // what the server says about its work (retentiond: flushes, merges)
	lat     map[string][]time.Duration
	counts  map[string]int64
}

func newRetentiond(tmp, bin string) *server {
	return &server{name: "retentiond", kind: "retentiond", bin: bin, dir: filepath.Join(tmp, "rtd")}
}

func newVictoriaLogs(tmp, bin, name, streams string) *server {
	return &server{name: name, kind: "vl", streams: streams, bin: bin, dir: filepath.Join(tmp, "vl-"+cmpStr(streams, "none"))}
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *server) start() {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		log.Fatal(err)
	}
	s.addr = freeAddr()
	var args []string
	switch s.kind {
	case "retentiond":
		// Default settings, development mode (no tokens, loopback only).
		cfg := fmt.Sprintf("data_dir: %s\nretention: 2y\nlisten:\n  http: %s\n  syslog_udp: \"\"\n  syslog_tcp: \"\"\nlog:\n  level: warn\n",
			filepath.Join(s.dir, "data"), s.addr)
		p := filepath.Join(s.dir, "retentiond.yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			log.Fatal(err)
		}
		args = []string{"serve", "--config", p}
	case "vl":
		args = []string{"-storageDataPath=" + filepath.Join(s.dir, "data"), "-httpListenAddr=" + s.addr,
			"-retentionPeriod=5y", "-loggerLevel=ERROR"}
	}
	var err error
	s.logf, err = os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		log.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	// The server dies with this tool, whatever way the tool ends.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	ready := "/readyz"
	if s.kind == "vl" {
		ready = "/health"
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get("http://" + s.addr + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			log.Fatalf("%s not ready after a minute (log: %s)", s.name, s.logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	s.logf.Close()
	s.cmd = nil
	// Measured once the server has written what it kept in memory:
	// VictoriaLogs holds recent rows in in-memory parts for seconds and
	// does not write them on /internal/force_flush alone.
	s.disk = du(filepath.Join(s.dir, "data"))
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// ingest posts every file, clients at a time, retrying a refused batch
// (429 or 503) after half a second, as a log shipper does.
func (s *server) ingest(files []string, clients int) {
	var u, ctype string
	switch s.kind {
	case "retentiond":
		u, ctype = "http://"+s.addr+"/api/v1/ingest", "application/x-ndjson"
	case "vl":
		q := url.Values{"_time_field": {"time"}}
		if s.streams != "" {
			q.Set("_stream_fields", s.streams)
		}
		// Without this content type VictoriaLogs answers 200 and stores nothing.
		u, ctype = "http://"+s.addr+"/insert/jsonline?"+q.Encode(), "application/stream+json"
	}
	next := make(chan string)
	go func() {
		for _, f := range files {
			next <- f
		}
		close(next)
	}()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for f := range next {
				for !s.post(u, ctype, f) {
					s.refused.Add(1)
					time.Sleep(500 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	s.wall = time.Since(t0)
}

// post sends one batch; false means refused (retry), anything else but 2xx
// is fatal.
func (s *server) post(u, ctype, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	resp, err := client.Post(u, ctype, f)
	if err != nil {
		log.Fatalf("%s: post: %v", s.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return false
	case resp.StatusCode/100 != 2:
		log.Fatalf("%s: post: status %d: %s", s.name, resp.StatusCode, bytes.TrimSpace(b))
	}
	return true
}

// settle asks the server to flush what it holds in memory, waits until its
// CPU time stops growing (no flush or merge left running; at most max), and
// then reads the figures.
func (s *server) settle(max time.Duration) {
	var u string
	switch s.kind {
	case "retentiond":
		u = "http://" + s.addr + "/api/v1/admin/flush"
	case "vl":
		u = "http://" + s.addr + "/internal/force_flush"
	}
	if resp, err := client.Post(u, "", nil); err != nil {
		log.Fatalf("%s: flush: %v", s.name, err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			// An older retentiond has no flush endpoint: its flush_interval
			// and merges run in the wait below instead.
			log.Printf("%s: flush: status %d", s.name, resp.StatusCode)
		}
	}
	pid := s.cmd.Process.Pid
	deadline := time.Now().Add(max)
	prev, quiet := cpuSeconds(pid), 0
	for quiet < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		c := cpuSeconds(pid)
		if c-prev < 0.03 {
			quiet++
		} else {
			quiet = 0
		}
		prev = c
	}
	s.cpu = prev
	s.hwm = status(pid)["VmHWM"]
	if s.kind == "retentiond" {
		s.notes = fmt.Sprintf(", %.0f flushes, %.0f merges, %.0f segment files",
			metric(s.addr, "retentiond_store_flushes_total"), metric(s.addr, "retentiond_store_merges_total"),
			metric(s.addr, "retentiond_store_segment_files"))
	}
}

// metric reads one unlabelled metric from retentiond's /metrics.
func metric(addr, name string) float64 {
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// query runs q once and returns its figure: the count, or the number of
// groups for a grouping.
func (s *server) query(q query, from, to time.Time) (int64, error) {
	var u string
	switch s.kind {
	case "retentiond":
		v := url.Values{"q": {q.rtd}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)},
			"case": {"BENCH-1"}, "reason": {"peer benchmark"}}
		path := "/api/v1/count"
		if q.rows > 0 {
			path = "/api/v1/search"
			v.Set("limit", strconv.Itoa(q.rows))
			v.Set("order", "asc")
			v.Set("format", "ndjson")
		}
		if q.by != "" {
			path = "/api/v1/stats"
			v.Set("by", q.by)
			v.Set("top", "0")
		}
		u = "http://" + s.addr + path + "?" + v.Encode()
	case "vl":
		lq := q.vl + " | stats count() n"
		if q.rows > 0 {
			lq = fmt.Sprintf("%s | sort by (_time) limit %d", q.vl, q.rows)
		}
		if q.by != "" {
			lq = q.vl + " | stats by (" + q.by + ") count() n | stats count() n"
		}
		v := url.Values{"query": {lq}, "start": {from.Format(time.RFC3339)}, "end": {to.Add(-time.Nanosecond).Format(time.RFC3339Nano)}}
		u = "http://" + s.addr + "/select/logsql/query?" + v.Encode()
	}
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	switch {
	case q.rows > 0:
		return int64(bytes.Count(b, []byte("\n"))), nil
	case s.kind == "vl":
		var r struct {
			N string `json:"n"`
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return 0, nil
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return 0, fmt.Errorf("decode %q: %w", b, err)
		}
		return strconv.ParseInt(r.N, 10, 64)
	case q.by != "":
		var r struct {
			Groups      *int64 `json:"groups"`
			Approximate bool   `json:"approximate"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return 0, fmt.Errorf("decode stats: %w", err)
		}
		if r.Groups == nil || r.Approximate {
			return 0, fmt.Errorf("stats answer is approximate: %s", b)
		}
		return *r.Groups, nil
	default:
		var r struct {
			Count int64 `json:"count"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return 0, fmt.Errorf("decode count: %w", err)
		}
		return r.Count, nil
	}
}

// report prints the figures as a table with retentiond's ratio to each
// VictoriaLogs layout.
func report(w io.Writer, servers []*server, queries []query, n, batches, clients int, ndjson, zstd3 int64, vlVersion string) {
	fmt.Fprintf(w, "\n%d records, %d batches of %d NDJSON lines (%s), %d POSTs at a time; VictoriaLogs %s; %s/%s, %d CPUs\n\n",
		n, batches, (n+batches-1)/batches, mib(ndjson), clients, vlVersion, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "figure\t"
	for _, s := range servers {
		head += s.name + "\t"
	}
	for _, s := range servers[1:] {
		head += "retentiond / " + strings.TrimPrefix(s.name, "VictoriaLogs, ") + "\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, val func(*server) float64, format func(float64) string) {
		line := name + "\t"
		for _, s := range servers {
			line += format(val(s)) + "\t"
		}
		for _, s := range servers[1:] {
			if v := val(s); v != 0 {
				line += fmt.Sprintf("%.2f×\t", val(servers[0])/v)
			} else {
				line += "–\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	row("ingest wall time", func(s *server) float64 { return s.wall.Seconds() }, func(v float64) string { return fmt.Sprintf("%.1f s", v) })
	row("server CPU incl. flushes and merges", func(s *server) float64 { return s.cpu }, func(v float64) string { return fmt.Sprintf("%.1f s", v) })
	row("server CPU per record", func(s *server) float64 { return s.cpu / float64(n) * 1e6 }, func(v float64) string { return fmt.Sprintf("%.1f µs", v) })
	row("peak RSS (VmHWM)", func(s *server) float64 { return float64(s.hwm) }, func(v float64) string { return mib(int64(v)) })
	row("batches answered 429/503", func(s *server) float64 { return float64(s.refused.Load()) }, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	row("data directory after shutdown", func(s *server) float64 { return float64(s.disk) }, func(v float64) string { return mib(int64(v)) })
	row("bytes per record", func(s *server) float64 { return float64(s.disk) / float64(n) }, func(v float64) string { return fmt.Sprintf("%.2f B", v) })
	row("size / zstd -3 of the NDJSON", func(s *server) float64 { return float64(s.disk) / float64(zstd3) }, func(v float64) string { return fmt.Sprintf("%.3f×", v) })
	for _, q := range queries {
		row(q.name+" (median ms)", func(s *server) float64 { return median(s.lat[q.name]).Seconds() * 1000 },
			func(v float64) string { return fmt.Sprintf("%.1f ms", v) })
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, q := range queries {
		what := "count"
		if q.by != "" {
			what = "groups"
		}
		if q.rows > 0 {
			what = "rows"
		}
		fmt.Fprintf(w, "%s: %s %d (retentiond q=%q; LogsQL %q)\n", q.name, what, servers[0].counts[q.name], q.rtd, q.vl)
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// cpuSeconds is utime+stime of pid (fields 14 and 15 of /proc/pid/stat),
// which count every thread, the background flushes and merges included.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatalf("read cpu time: %v", err)
	}
	// The command name (field 2) may hold spaces; fields are counted after
	// its closing parenthesis.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(ut+st) / clkTck
}

// status returns the byte values of the Vm* lines of /proc/pid/status.
func status(pid int) map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatalf("read status: %v", err)
	}
	m := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Vm") {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			m[k] = n << 10
		}
	}
	return m
}

// du is the size of the files under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
