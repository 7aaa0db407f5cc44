package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestAlertRulesUseExposedMetrics checks every metric name that
// deploy/prometheus/alerts.yml uses against what the real daemon exposes on
// /metrics. Rules draw on several packages (purge, store, wal, ingest), so
// only the whole daemon can say whether a rule watches a metric that exists:
// a misspelt or renamed metric would make an alert silently never fire.
func TestAlertRulesUseExposedMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, name := range regexp.MustCompile(`retentiond_[a-z0-9_]+`).FindAllString(string(rules), -1) {
		used[name] = true
	}
	if len(used) < 8 {
		t.Fatalf("only %d distinct metric names in alerts.yml", len(used))
	}

	dir := t.TempDir()
	// Every listener runs, a cluster peer is configured (the peer metrics
	// exist only then; it is never asked), and object storage (an endpoint
	// nothing listens on: the daemon starts anyway and exposes the upload
	// backlog), so that each one's metrics are registered.
	d := startDaemon(t, dir, freePort(t), "RETENTIOND_LISTEN_SYSLOG_TCP="+freePort(t),
		"RETENTIOND_CLUSTER_PEERS=http://"+freePort(t), "RETENTIOND_CLUSTER_TOKEN="+strings.Repeat("t", 32),
		"RETENTIOND_OBJECT_STORAGE_ENDPOINT=http://"+freePort(t), "RETENTIOND_OBJECT_STORAGE_BUCKET=retentiond",
		"RETENTIOND_CLUSTER_NODE=alerts-test")
	defer d.stop(syscall.SIGTERM)
	// The oldest-record gauges exist only while something is stored.
	if _, err := ingestBatch(d.addr, []string{line(1)}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		exposed[f[2]] = true
		if f[3] == "histogram" || f[3] == "summary" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exposed[f[2]+suffix] = true
			}
		}
	}
	for name := range used {
		if !exposed[name] {
			t.Errorf("alerts.yml uses %s, which the daemon does not expose (no # TYPE line on /metrics)", name)
		}
	}
}
