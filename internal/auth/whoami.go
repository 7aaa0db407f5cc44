package auth

import (
	"net/http"
	"slices"

	"github.com/retentiond/retentiond/internal/httpx"
)

// Authenticated lets through any caller that Require would identify (a
// valid token, whatever its roles; a loopback client in development mode),
// with its Principal in the context. It serves what any signed-in user may
// read: who they are and the retention cutoff.
func (a *Authenticator) Authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.identify(w, r, nil, false)
		if !ok {
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// WhoAmI serves GET /api/v1/whoami behind Authenticated: the token's name
// and roles, and whether the daemon runs in development mode, so that a
// client (the console) knows which views to offer. It never echoes the
// token.
func (a *Authenticator) WhoAmI() http.Handler {
	return a.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		roles := make([]string, 0, len(p.Roles))
		for _, x := range p.Roles {
			roles = append(roles, string(x))
		}
		slices.Sort(roles)
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"name": p.Name, "roles": roles, "dev_mode": a.DevMode()})
	}))
}
