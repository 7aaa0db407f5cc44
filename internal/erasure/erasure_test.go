package erasure

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/report"
	"github.com/retentiond/retentiond/internal/signing"
	"github.com/retentiond/retentiond/internal/store"
)

type holdSet map[string][]string

func (h holdSet) HeldBy(d time.Time) []string { return h[record.DayString(d)] }

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":            "203.0.113.7/32",
		" 203.0.113.7 ":          "203.0.113.7/32",
		"::ffff:203.0.113.7":     "203.0.113.7/32",
		"203.0.113.9/24":         "203.0.113.0/24",
		"2001:db8::1":            "2001:db8::1/128",
		"2001:db8::1/64":         "2001:db8::/64",
		"::ffff:203.0.113.0/120": "203.0.113.0/24",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "example.nl", "203.0.113.7/33", "1.2.3"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted it", in)
		}
	}
}

// TestEraseOverAPI runs an erasure the way the daemon does and checks
// what it leaves behind: the counts, a signed report that verifies and
// names the address only by its keyed hash, audit lines and daemon log
// without the address, and a held day left alone.
func TestEraseOverAPI(t *testing.T) {
	dir := t.TempDir()
	var daemonLog bytes.Buffer
	log := slog.New(slog.NewTextHandler(&daemonLog, nil))
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	st, err := store.Open(dir, store.Options{Now: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	target := netip.MustParseAddr("203.0.113.7")
	var recs []record.Record
	for d := range 3 {
		for i := range 20 {
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
			if i%4 == 0 {
				ip = target
			}
			recs = append(recs, record.Record{Time: time.Date(2026, 3, 1+d, i, 0, 0, 0, time.UTC), Domain: "shop.example.nl",
				Path: "/p", UserAgent: "ua", IP: ip})
		}
	}
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := signing.NewKey(priv)
	reports, err := report.OpenDir(filepath.Join(dir, report.DirName), key, report.DirOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(dir, Options{Store: st, Audit: al, Reports: reports, Holds: holdSet{"2026-03-02": {"hold-1"}}, Now: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) (int, map[string]json.RawMessage) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/admin/erase", strings.NewReader(body)))
		var m map[string]json.RawMessage
		json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	if code, _ := post(`{"ip":"203.0.113.7","case":"GDPR-1","reason":"erase 203.0.113.7 please"}`); code != 400 {
		t.Fatalf("a reason naming the address: %d, want 400", code)
	}
	if code, _ := post(`{"ip":"203.0.113.7","case":"GDPR-1"}`); code != 400 {
		t.Fatalf("no reason: %d, want 400", code)
	}
	code, m := post(`{"ip":"203.0.113.7","case":"GDPR-1","reason":"Art. 17 request of 2026-03-09"}`)
	if code != 200 {
		t.Fatalf("erase: %d %s", code, m["error"])
	}
	var rep Report
	if err := json.Unmarshal(m["report"], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.RecordsRemoved != 10 || len(rep.Days) != 2 || rep.Days[0].Day != "2026-03-01" || rep.Days[0].RecordsRemoved != 5 ||
		len(rep.Held) != 1 || rep.Held[0].Day != "2026-03-02" || rep.AuditSeq == 0 {
		t.Fatalf("report %+v", rep)
	}
	keyB, _ := os.ReadFile(KeyPath(dir))
	if rep.Subject != Subject(keyB, netip.PrefixFrom(target, 32)) {
		t.Fatalf("subject %s is not the keyed hash of the address", rep.Subject)
	}
	var name string
	json.Unmarshal(m["report_file"], &name)
	b, err := reports.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := report.Verify(b, key.Public()); err != nil || len(res.Problems) > 0 || res.Kind != report.KindErasure {
		t.Fatalf("report verify: %+v %v", res, err)
	}
	addrText := []byte(target.String())
	for what, content := range map[string][]byte{"report": b, "daemon log": daemonLog.Bytes()} {
		if bytes.Contains(content, addrText) {
			t.Errorf("the %s names the address in clear", what)
		}
	}
	files, _ := filepath.Glob(filepath.Join(al.Dir(), "*.jsonl"))
	for _, f := range files {
		ab, _ := os.ReadFile(f)
		if bytes.Contains(ab, addrText) {
			t.Errorf("the audit log names the address in clear")
		}
		if !bytes.Contains(ab, []byte(`"event":"erasure"`)) || !bytes.Contains(ab, []byte(rep.Subject)) {
			t.Errorf("the audit log has no erasure line with the subject")
		}
	}
	// The held day still has its records of the address; the others none.
	snap, err := st.Snapshot(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	count := map[string]int{}
	for _, v := range snap.Days {
		for _, sr := range v.Segments {
			for r, err := range sr.Iter() {
				if err != nil {
					t.Fatal(err)
				}
				if r.IP == target {
					count[record.DayString(v.Day)]++
				}
			}
		}
		for r := range v.Head.All() {
			if r.IP == target {
				count[record.DayString(v.Day)]++
			}
		}
	}
	if len(count) != 1 || count["2026-03-02"] != 5 {
		t.Fatalf("records of the address per day after the erasure: %v", count)
	}
}
