package report

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/signing"
)

func testKey(t *testing.T) *signing.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signing.NewKey(priv)
}

type testDay struct {
	Day     string   `json:"day"`
	Records int64    `json:"records"`
	KeyIDs  []string `json:"key_ids"`
}

type testBody struct {
	Result string    `json:"result"`
	Days   []testDay `json:"days"`
	Held   []testDay `json:"held"`
}

var created = time.Date(2026, 3, 2, 0, 5, 0, 123, time.UTC)

func signed(t *testing.T, k *signing.Key) []byte {
	t.Helper()
	b, err := Sign(k, KindPurge, created, testBody{Result: "success",
		Days: []testDay{{"2024-02-28", 1200, []string{}}, {"2024-02-29", 900, []string{}}}, Held: []testDay{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a report, applies fn to the generic tree and encodes it.
func edit(t *testing.T, b []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func body(m map[string]any) map[string]any { return m["report"].(map[string]any) }
func day(m map[string]any, i int) map[string]any {
	return body(m)["days"].([]any)[i].(map[string]any)
}

func TestVerify(t *testing.T) {
	k := testKey(t)
	good := signed(t, k)
	other := testKey(t)
	tests := []struct {
		name    string
		b       []byte
		trusted ed25519.PublicKey
		want    []string // the fields named, in order; empty: intact
	}{
		{"untouched", good, k.Public(), nil},
		{"untouched, not pinned", good, nil, nil},
		{"reformatted only", edit(t, good, func(map[string]any) {}), k.Public(), nil},
		{"record count edited", edit(t, good, func(m map[string]any) { day(m, 1)["records"] = 0 }), k.Public(),
			[]string{"report.days[1].records"}},
		{"day edited", edit(t, good, func(m map[string]any) { day(m, 0)["day"] = "2024-02-27" }), nil,
			[]string{"report.days[0].day"}},
		{"kind edited", edit(t, good, func(m map[string]any) { m["kind"] = "erasure" }), nil, []string{"kind"}},
		{"created edited", edit(t, good, func(m map[string]any) { m["created"] = "2026-03-01T00:05:00Z" }), nil, []string{"created"}},
		{"day removed", edit(t, good, func(m map[string]any) { body(m)["days"] = body(m)["days"].([]any)[:1] }), nil,
			[]string{"report.days[1].day", "report.days[1].key_ids", "report.days[1].records"}},
		{"field added", edit(t, good, func(m map[string]any) { body(m)["note"] = "x" }), nil, []string{"report.note"}},
		{"held day added", edit(t, good, func(m map[string]any) { body(m)["held"] = []any{"2024-02-27"} }), nil,
			[]string{"report.held[0]", "report.held"}},
		{"value and its digest edited", edit(t, good, func(m map[string]any) {
			day(m, 1)["records"] = 0
			m["digests"].(map[string]any)["report.days[1].records"] = digest("report.days[1].records", "0")
		}), nil, []string{"signature"}},
		{"re-signed with another key", func() []byte {
			b, _ := Sign(other, KindPurge, created, testBody{Result: "success"})
			return b
		}(), k.Public(), []string{"public_key"}},
		{"key swapped", edit(t, good, func(m map[string]any) { m["public_key"] = other.PublicText() }), nil, []string{"signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Verify(tt.b, tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res.Problems {
				got = append(got, p.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("problems %v, want fields %v", res.Problems, tt.want)
			}
			if res.Pinned != (tt.trusted != nil) {
				t.Errorf("pinned %v", res.Pinned)
			}
		})
	}
}

func TestVerifyRefusesNonReports(t *testing.T) {
	for _, b := range []string{"", "[]", `{"format":"other"}`, "not json"} {
		if _, err := Verify([]byte(b), nil); err == nil {
			t.Errorf("Verify(%q) accepted it", b)
		}
	}
}

func TestDir(t *testing.T) {
	k := testKey(t)
	dir := filepath.Join(t.TempDir(), DirName)
	d, err := OpenDir(dir, k, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC)
	n1, err := d.Save(KindPurge, old, testBody{Result: "success"})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := d.Save(KindPurge, old, testBody{Result: "success"}) // same instant: a second name
	if err != nil || n2 == n1 {
		t.Fatalf("second report at the same instant: %q, %v", n2, err)
	}
	n3, err := d.Save(KindErasure, created, testBody{Result: "success"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := d.List()
	if err != nil || len(list) != 3 || list[2].Name != n3 || list[2].Kind != KindErasure || !list[2].Created.Equal(created) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	b, err := d.Read(n3)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := Verify(b, k.Public()); err != nil || len(res.Problems) > 0 {
		t.Fatalf("stored report does not verify: %+v %v", res, err)
	}
	if _, err := d.Read("../keys/signing-key.pem"); err != ErrNotFound {
		t.Fatalf("Read outside the directory: %v", err)
	}

	// A report renamed to look older is kept.
	renamed := "20230101T000000.000000000Z-purge.json"
	if err := os.WriteFile(filepath.Join(dir, renamed), b, 0o640); err != nil {
		t.Fatal(err)
	}
	files, _, err := d.Purge(context.Background(), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || files != 2 {
		t.Fatalf("Purge = %d, %v; want the two 2024 reports", files, err)
	}
	list, _ = d.List()
	if len(list) != 2 || list[0].Name != renamed || list[1].Name != n3 {
		t.Fatalf("after purge: %+v", list)
	}

	srv := http.NewServeMux()
	srv.HandleFunc("GET /r", d.ServeList)
	srv.HandleFunc("GET /r/{name}", d.ServeReport)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/r", nil))
	var got struct {
		PublicKey string `json:"public_key"`
		Reports   []Info `json:"reports"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.PublicKey != k.PublicText() || len(got.Reports) != 2 {
		t.Fatalf("list answer %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/r/"+n3, nil))
	if rec.Code != 200 || rec.Body.String() != string(b) {
		t.Fatalf("report answer %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/r/nope.json", nil))
	if rec.Code != 404 {
		t.Fatalf("missing report: %d", rec.Code)
	}
}
