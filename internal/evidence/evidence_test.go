package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"io"
	"slices"
	"testing"
	"time"
)

func testKey(t *testing.T, seed byte) *Key {
	t.Helper()
	return NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
}

// bundle writes a small bundle and returns its bytes.
func bundle(t *testing.T, k *Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	w := NewWriter(&buf, k, at)
	rw, err := w.Records()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(rw, `{"time":"2026-12-01T00:00:00.000Z","domain":"a.example","path":"/<img src=x>","user_agent":"x","ip":"203.0.113.7"}`+"\n")
	err = w.Finish(Meta{Case: "INC-42", Reason: "leak", Query: "ip:203.0.113.7", From: at.Add(-time.Hour), To: at,
		ExportedBy: "alice", Records: 1, AuditSeq: 17, CaseSearches: []AuditRef{{Seq: 12, Endpoint: "search", Outcome: "allowed"}}})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rewrite copies a zip, letting edit change (or drop, by returning nil) each
// member's content, and add extra members.
func rewrite(t *testing.T, in []byte, edit func(name string, b []byte) []byte, extra map[string]string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if b = edit(f.Name, b); b == nil {
			continue
		}
		w, _ := zw.Create(f.Name)
		w.Write(b)
	}
	for n, s := range extra {
		w, _ := zw.Create(n)
		io.WriteString(w, s)
	}
	zw.Close()
	return out.Bytes()
}

func verify(t *testing.T, b []byte, opts VerifyOptions) *Result {
	t.Helper()
	res, err := Verify(bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerifyUntouched(t *testing.T) {
	k := testKey(t, 1)
	res := verify(t, bundle(t, k), VerifyOptions{Trusted: k.Public()})
	if !res.OK() {
		t.Fatalf("untouched bundle: %v", res.Problems)
	}
	if res.Meta.Case != "INC-42" || res.Meta.AuditSeq != 17 || res.Meta.Records != 1 || len(res.Meta.CaseSearches) != 1 {
		t.Fatalf("meta = %+v", res.Meta)
	}
	if res.Fingerprint != Fingerprint(k.Public()) {
		t.Fatalf("fingerprint %s", res.Fingerprint)
	}
}

func TestVerifyNamesAlteredMember(t *testing.T) {
	k := testKey(t, 1)
	orig := bundle(t, k)
	flip := func(target string) func(string, []byte) []byte {
		return func(name string, b []byte) []byte {
			if name == target {
				b = bytes.Replace(b, []byte("203.0.113.7"), []byte("203.0.113.8"), 1)
				b = bytes.Replace(b, []byte("INC-42"), []byte("INC-43"), 1)
				b = bytes.Replace(b, []byte(`"bytes"`), []byte(`"bytes" `), 1)
				if len(b) > 0 && b[0] != '{' {
					b[0] ^= 1
				}
			}
			return b
		}
	}
	for _, tc := range []struct {
		name    string
		edit    func(string, []byte) []byte
		extra   map[string]string
		altered string
	}{
		{"records changed", flip(RecordsFile), nil, RecordsFile},
		{"bundle.json changed", flip(BundleFile), nil, BundleFile},
		{"public key changed", flip(KeyFileName), nil, KeyFileName},
		{"manifest changed", flip(ManifestFile), nil, ManifestFile},
		{"signature changed", flip(SigFile), nil, ManifestFile},
		{"records removed", func(n string, b []byte) []byte {
			if n == RecordsFile {
				return nil
			}
			return b
		}, nil, RecordsFile},
		{"member added", func(_ string, b []byte) []byte { return b }, map[string]string{"extra.txt": "x"}, "extra.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := verify(t, rewrite(t, orig, tc.edit, tc.extra), VerifyOptions{})
			if res.OK() || !slices.Equal(res.Altered, []string{tc.altered}) {
				t.Fatalf("altered = %v (problems %v), want [%s]", res.Altered, res.Problems, tc.altered)
			}
		})
	}
}

func TestVerifyUntrustedKey(t *testing.T) {
	// Someone re-signed an edited bundle with their own key: the bundle is
	// self-consistent, and only the pinned key tells.
	res := verify(t, bundle(t, testKey(t, 2)), VerifyOptions{Trusted: testKey(t, 1).Public()})
	if res.OK() || len(res.Altered) != 0 || len(res.Problems) != 1 {
		t.Fatalf("want one key problem, got altered %v problems %v", res.Altered, res.Problems)
	}
}

func TestVerifyNotAZip(t *testing.T) {
	if _, err := Verify(bytes.NewReader([]byte("nope")), 4, VerifyOptions{}); err == nil {
		t.Fatal("no error for a non-zip")
	}
}
