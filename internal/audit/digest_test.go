package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"testing"
)

// TestDoneLineCarriesDigest: the done line of a guarded request holds the
// SHA-256 of exactly the body the client received, and the row count, so
// an exported file can be matched to the search that made it; the verifier
// still accepts the chain.
func TestDoneLineCarriesDigest(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		params     url.Values
	}{
		{"search export", "/api/v1/search", url.Values{"format": {"csv"}, "limit": {"0"}}},
		{"count", "/api/v1/count", url.Values{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			q := url.Values{"q": {"ip:203.0.113.0/24"}, "case": {"INC-7"}, "reason": {"export for the police"}}
			for k, v := range tc.params {
				q[k] = v
			}
			resp, body := e.get(t, tc.path, q, e.token)
			if resp.StatusCode != 200 || body == "" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			ls := e.lines(t)
			done := ls[len(ls)-1]
			sum := sha256.Sum256([]byte(body))
			if done.Outcome != OutcomeDone || done.SHA256 != hex.EncodeToString(sum[:]) || done.Bytes != int64(len(body)) ||
				done.Count == nil || *done.Count != 2 {
				t.Fatalf("done line %+v, want sha256 %x of the %d bytes received and count 2", done, sum, len(body))
			}
			if res, _ := Verify(e.log.Dir()); res.FirstBad != nil {
				t.Fatalf("chain: %+v", res.FirstBad)
			}
		})
	}
}
