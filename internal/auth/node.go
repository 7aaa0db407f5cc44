package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/retentiond/retentiond/internal/policy"
)

// NodePrefix begins the principal name of a request authenticated by the
// node token: "node:" and the asking node's name, as audit lines show it.
const NodePrefix = "node:"

// RequireNode lets through only a request that presents the cluster's
// node token (cluster.token) as its bearer token: the one credential the
// nodes of a cluster share to ask each other for their data not yet in the
// bucket (docs/scale-out.md). API tokens do not pass, nor does the node
// token pass anywhere else. The comparison is of SHA-256 digests in
// constant time, and failures spend the source's failure budget like any
// other (429 when spent). The principal is named NodePrefix plus the
// asking node's name from the nodeParam query parameter (when it is a
// valid name; otherwise NodePrefix+"?"), with no roles.
func (a *Authenticator) RequireNode(token, nodeParam string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := SourceAddr(r)
		reason := ""
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		switch {
		case r.Header.Get("Authorization") == "":
			reason = ReasonMissing
		case !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > MaxTokenLength:
			reason = ReasonMalformed
		default:
			got := sha256.Sum256([]byte(tok))
			if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				reason = ReasonInvalid
			}
		}
		if reason != "" {
			a.fail(w, r, src, Denial{Status: http.StatusUnauthorized, Reason: reason, Who: Principal{Source: src}}, nil)
			return
		}
		name := r.URL.Query().Get(nodeParam)
		if policy.ValidTokenName(name) != nil {
			name = "?"
		}
		p := Principal{Name: NodePrefix + name, Source: src}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
