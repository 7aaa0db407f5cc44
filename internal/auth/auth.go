// Package auth decides who may call retentiond's HTTP API. Callers present a
// bearer token; the daemon keeps only the SHA-256 of each token, with a name
// (a person, never shared) and roles. Failed attempts are rate-limited per
// source address; a request with a valid token is never refused because of
// someone else's failures. With no tokens configured the API serves loopback
// clients only (development mode). HTTP ingest may alternatively be
// authorised by an allow-list of source networks, which is also what the
// syslog listeners use. The token list and the allow-list can be replaced
// while the daemon runs (Reload).
package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/policy"
)

// Role is a permission a token carries (policy.Role: the config check and
// the authenticator share one list of roles).
type Role = policy.Role

// The roles a token can carry.
const (
	RoleIngest = policy.RoleIngest // send records
	RoleSearch = policy.RoleSearch // search, count, stats, export
	RoleAdmin  = policy.RoleAdmin  // administrative actions such as an on-demand purge
)

// TokenConfig is one entry of the auth.tokens config list. It mirrors the
// config shape so that this package does not import internal/config.
type TokenConfig struct {
	Name   string   // who holds the token (a person or one shipper)
	SHA256 string   // hex SHA-256 of the exact token string
	Roles  []string // ingest, search, admin
}

// Options configure an Authenticator.
type Options struct {
	Tokens      []TokenConfig
	IngestAllow []netip.Prefix // sources that may ingest without a token (see RequireIngest and SourceAllowed)
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // nil: metrics are kept but not registered
	// FailuresPerMinute is how many failed authentications one source may
	// make per minute (also the burst) before it gets 429; 0 means 10.
	FailuresPerMinute int
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Principal is the authenticated caller, stored in the request context.
type Principal struct {
	Name   string     // token name; empty for a request allowed by source address or development mode
	Roles  []Role     // roles of the token (all roles in development mode)
	Source netip.Addr // the TCP peer address (proxy headers are never trusted)
}

// Has reports whether p carries role r.
func (p Principal) Has(r Role) bool {
	for _, x := range p.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Denial describes a refused request, for callers that must record refusals
// (the search audit log does).
type Denial struct {
	Status int       // 401, 403 or 429
	Reason string    // a FailureReason value
	Who    Principal // Name is set when the token was valid but lacked the role
}

// Failure reasons, used as the value of the reason label of
// retentiond_auth_failures_total and in Denial.Reason. They never contain
// anything the client sent.
const (
	ReasonMissing     = "missing_token"      // no Authorization header
	ReasonMalformed   = "malformed_header"   // not "Bearer <token>"
	ReasonInvalid     = "invalid_token"      // no configured token has this hash
	ReasonMissingRole = "missing_role"       // valid token without the needed role
	ReasonNotLoopback = "dev_mode_remote"    // development mode and a non-loopback client
	ReasonSource      = "source_not_allowed" // ingest without token from a source outside ingest.allow
	ReasonThrottled   = "rate_limited"       // too many failures from this source
)

type tokenEntry struct {
	name  string
	sum   [sha256.Size]byte
	roles []Role
}

// state is what Reload replaces as a whole: a request reads it once, so it
// never sees half of an old and half of a new configuration.
type state struct {
	tokens []tokenEntry
	allow  []netip.Prefix
}

// devMode reports whether no tokens are configured.
func (s *state) devMode() bool { return len(s.tokens) == 0 }

// Authenticator checks tokens and roles. It is safe for concurrent use.
type Authenticator struct {
	state   atomic.Pointer[state]
	log     *slog.Logger
	now     func() time.Time
	perMin  int
	metrics *metrics

	mu      sync.Mutex
	sources map[netip.Prefix]*sourceLimiter
}

type sourceLimiter struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// maxSources bounds the failure-limiter table; beyond it, idle entries are
// dropped so an attacker with many addresses cannot exhaust memory.
const maxSources = 10000

// MaxTokenLength bounds the bearer token length accepted; real tokens are 47
// bytes, and refusing long ones early stops hashing attacker-sized input.
const MaxTokenLength = 256

// New validates the token list and builds an Authenticator. Token names must
// be unique and non-empty, hashes 64 hex digits and unique, and every token
// must carry at least one known role.
func New(opts Options) (*Authenticator, error) {
	a := &Authenticator{
		log:     cmp.Or(opts.Logger, slog.Default()),
		now:     opts.Now,
		perMin:  opts.FailuresPerMinute,
		sources: make(map[netip.Prefix]*sourceLimiter),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.perMin <= 0 {
		a.perMin = 10
	}
	st, err := newState(opts.Tokens, opts.IngestAllow)
	if err != nil {
		return nil, err
	}
	a.state.Store(st)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	return a, nil
}

// newState validates a token list and an allow-list; New and Reload share
// it, so a reload accepts exactly what a start accepts.
func newState(tokens []TokenConfig, allow []netip.Prefix) (*state, error) {
	st := &state{allow: make([]netip.Prefix, 0, len(allow))}
	names := map[string]bool{}
	sums := map[[sha256.Size]byte]bool{}
	for i, tc := range tokens {
		if err := policy.ValidTokenName(tc.Name); err != nil {
			return nil, fmt.Errorf("auth.tokens[%d]: %w", i, err)
		}
		if names[tc.Name] {
			return nil, fmt.Errorf("auth.tokens[%d]: duplicate name %q", i, tc.Name)
		}
		names[tc.Name] = true
		var e tokenEntry
		e.name = tc.Name
		sum, err := policy.ParseTokenHash(tc.SHA256)
		if err != nil {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): sha256 must be 64 hex digits, lower-case (the hash, never the token itself)", i, tc.Name)
		}
		e.sum = sum
		if sums[e.sum] {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): the same token hash appears twice", i, tc.Name)
		}
		sums[e.sum] = true
		if len(tc.Roles) == 0 {
			return nil, fmt.Errorf("auth.tokens[%d] (%s): no roles", i, tc.Name)
		}
		for _, rs := range tc.Roles {
			r, err := policy.ParseRole(rs)
			if err != nil {
				return nil, fmt.Errorf("auth.tokens[%d] (%s): %w", i, tc.Name, err)
			}
			e.roles = append(e.roles, r)
		}
		st.tokens = append(st.tokens, e)
	}
	for _, p := range allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("ingest.allow: invalid prefix")
		}
		st.allow = append(st.allow, unmapPrefix(p).Masked())
	}
	return st, nil
}

// Changes says what a Reload changed. It names tokens, never their hashes,
// so it can be logged.
type Changes struct {
	Added, Removed, Changed []string // token names; Changed: new hash or roles
	AllowChanged            bool     // ingest.allow differs
	DevModeBefore, DevMode  bool     // development mode before and after
}

// Any reports whether anything changed.
func (c Changes) Any() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed) > 0 || c.AllowChanged
}

// Reload validates a new token list and allow-list as New does and, only if
// both are valid, replaces the current ones in one step: each request sees
// either the old or the new configuration, never a mix. On an error nothing
// changes. The failure budgets of sources are kept.
func (a *Authenticator) Reload(tokens []TokenConfig, allow []netip.Prefix) (Changes, error) {
	st, err := newState(tokens, allow)
	if err != nil {
		return Changes{}, err
	}
	old := a.state.Swap(st)
	c := Changes{DevModeBefore: old.devMode(), DevMode: st.devMode(), AllowChanged: !slices.Equal(old.allow, st.allow)}
	before := map[string]tokenEntry{}
	for _, e := range old.tokens {
		before[e.name] = e
	}
	for _, e := range st.tokens {
		o, ok := before[e.name]
		switch {
		case !ok:
			c.Added = append(c.Added, e.name)
		case o.sum != e.sum || !slices.Equal(o.roles, e.roles):
			c.Changed = append(c.Changed, e.name)
		}
		delete(before, e.name)
	}
	for _, e := range old.tokens {
		if _, gone := before[e.name]; gone {
			c.Removed = append(c.Removed, e.name)
		}
	}
	return c, nil
}

// DevMode reports whether no tokens are configured. The API then serves
// loopback clients only, and the daemon should warn about it at start.
func (a *Authenticator) DevMode() bool { return a.state.Load().devMode() }

// SourceAllowed reports whether a client at addr may send syslog (which
// carries no token). With an empty ingest.allow only loopback addresses are
// allowed; with a non-empty one only the listed networks are, and loopback
// only if it is listed: on a shared webhosting machine every local user can
// reach loopback, so once the operator names the shippers nothing else is
// trusted implicitly. HTTP ingest has the stricter rule of RequireIngest.
func (a *Authenticator) SourceAllowed(addr netip.Addr) bool {
	return a.state.Load().sourceAllowed(addr)
}

func (s *state) sourceAllowed(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	if len(s.allow) == 0 {
		return addr.Unmap().IsLoopback()
	}
	return s.listed(addr)
}

// listed reports whether addr lies in a network of ingest.allow.
func (s *state) listed(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// httpIngestAllowed reports whether HTTP ingest without a token is allowed
// from addr. Once tokens exist, only sources listed in ingest.allow are:
// loopback is never implied, because any local process could then plant
// records (fake evidence against an address). In development mode the
// syslog rule applies, as it always did.
func (s *state) httpIngestAllowed(addr netip.Addr) bool {
	if s.devMode() {
		return s.sourceAllowed(addr)
	}
	return s.listed(addr)
}

type principalKey struct{}

// PrincipalFrom returns the principal the middleware stored in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns a copy of ctx carrying p. The middleware uses it;
// tests and internal callers may too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// SourceAddr returns the TCP peer address of r, unmapped. Forwarding headers
// (X-Forwarded-For and the like) are deliberately ignored: a header is not
// access control.
func SourceAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(r.RemoteAddr)
	if err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// Require returns a handler that lets a request through to next only when
// it carries a valid token with role (or, in development mode, comes from
// loopback). It answers 401 without or with a bad token, 403 when the role
// is missing, and 429 instead of 401 or 403 while the source has failed too
// often. A valid token is never throttled: every local process shares the
// loopback source, and one process guessing must not lock out the others.
func (a *Authenticator) Require(role Role, next http.Handler) http.Handler {
	return a.RequireWith(role, next, nil)
}

// RequireWith is Require with a hook called for every refused request before
// the refusal is written; the audit log uses it to record refused searches.
// The hook is not called for 429 answers, so a flood of throttled requests
// cannot be turned into a flood of audit writes.
func (a *Authenticator) RequireWith(role Role, next http.Handler, onDeny func(*http.Request, Denial)) http.Handler {
	return a.requireAny([]Role{role}, next, onDeny, false)
}

// RequireAny is Require for an endpoint that any one of roles may use: the
// case registry's read endpoints serve both the admins who manage cases and
// the investigators who search under them.
func (a *Authenticator) RequireAny(roles []Role, next http.Handler) http.Handler {
	return a.requireAny(roles, next, nil, false)
}

func (a *Authenticator) requireAny(roles []Role, next http.Handler, onDeny func(*http.Request, Denial), basic bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.identify(w, r, onDeny, basic)
		if !ok {
			return
		}
		if !slices.ContainsFunc(roles, p.Has) {
			// A valid token lacking a role is not a guessing attempt, so it
			// does not consume the source's failure budget.
			a.metrics.failures.WithLabelValues(ReasonMissingRole).Inc()
			a.deny(w, r, Denial{Status: http.StatusForbidden, Reason: ReasonMissingRole, Who: p}, onDeny)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// identify returns the caller (with basic, also from a Basic password): the token's principal, or in development
// mode a loopback client with every role. Otherwise it refuses the request
// (401, or 403 for a remote client in development mode) and returns false.
func (a *Authenticator) identify(w http.ResponseWriter, r *http.Request, onDeny func(*http.Request, Denial), basic bool) (Principal, bool) {
	src := SourceAddr(r)
	st := a.state.Load()
	if st.devMode() {
		if !src.IsLoopback() {
			a.fail(w, r, src, Denial{Status: http.StatusForbidden, Reason: ReasonNotLoopback, Who: Principal{Source: src}}, onDeny)
			return Principal{}, false
		}
		return Principal{Roles: []Role{RoleIngest, RoleSearch, RoleAdmin}, Source: src}, true
	}
	p, reason := authenticate(st, r, src, basic)
	if reason != "" {
		a.fail(w, r, src, Denial{Status: http.StatusUnauthorized, Reason: reason, Who: Principal{Source: src}}, onDeny)
		return Principal{}, false
	}
	return p, true
}

// RequireIngest lets a request through when it carries a valid token with
// the ingest role, or carries no token and is allowed by source: once
// tokens exist only a source listed in ingest.allow is (loopback is not
// implied); in development mode the syslog rule of SourceAllowed applies. A
// request that presents a token is judged by the token alone: a bad token
// is refused even from an allowed source, so a misconfigured shipper is
// noticed. The token may also be sent as the password of HTTP Basic
// authentication (the user name is ignored), because that is all some log
// shippers can send (Filebeat, Logstash and Fluent Bit's es output).
func (a *Authenticator) RequireIngest(next http.Handler) http.Handler {
	tokenRequired := a.requireAny([]Role{RoleIngest}, next, nil, true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			tokenRequired.ServeHTTP(w, r)
			return
		}
		src := SourceAddr(r)
		st := a.state.Load()
		if st.httpIngestAllowed(src) {
			p := Principal{Roles: []Role{RoleIngest}, Source: src}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		}
		if st.devMode() {
			a.fail(w, r, src, Denial{Status: http.StatusForbidden, Reason: ReasonNotLoopback, Who: Principal{Source: src}}, nil)
			return
		}
		a.fail(w, r, src, Denial{Status: http.StatusUnauthorized, Reason: ReasonSource, Who: Principal{Source: src}}, nil)
	})
}

// authenticate checks the bearer token (with basic, also a Basic password)
// and returns the principal, or a failure reason.
func authenticate(st *state, r *http.Request, src netip.Addr, basic bool) (Principal, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, ReasonMissing
	}
	scheme, tok, ok := strings.Cut(h, " ")
	switch {
	case ok && strings.EqualFold(scheme, "Bearer"):
	case ok && basic && strings.EqualFold(scheme, "Basic"):
		_, pw, ok := r.BasicAuth()
		if !ok {
			return Principal{}, ReasonMalformed
		}
		tok = pw
	default:
		return Principal{}, ReasonMalformed
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > MaxTokenLength {
		return Principal{}, ReasonMalformed
	}
	e := st.lookup(tok)
	if e == nil {
		return Principal{}, ReasonInvalid
	}
	return Principal{Name: e.name, Roles: e.roles, Source: src}, ""
}

// lookup hashes tok and compares the digest with every configured hash in
// constant time. Comparing fixed-length digests (not the tokens) means
// subtle.ConstantTimeCompare never short-cuts on a length difference, and
// looping over all entries without an early exit keeps the time independent
// of which entry matched.
func (s *state) lookup(tok string) *tokenEntry {
	sum := sha256.Sum256([]byte(tok))
	var found *tokenEntry
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	return found
}

// fail spends one failure from src's budget and refuses the request with d;
// when the budget is exhausted it answers 429 instead, counted as
// rate_limited only (not as d's reason) and without calling onDeny.
func (a *Authenticator) fail(w http.ResponseWriter, r *http.Request, src netip.Addr, d Denial, onDeny func(*http.Request, Denial)) {
	if !a.spend(src) {
		a.deny(w, r, Denial{Status: http.StatusTooManyRequests, Reason: ReasonThrottled, Who: d.Who}, nil)
		return
	}
	a.metrics.failures.WithLabelValues(d.Reason).Inc()
	a.deny(w, r, d, onDeny)
}

func (a *Authenticator) deny(w http.ResponseWriter, r *http.Request, d Denial, onDeny func(*http.Request, Denial)) {
	if d.Reason == ReasonThrottled {
		a.metrics.failures.WithLabelValues(ReasonThrottled).Inc()
	}
	if onDeny != nil {
		onDeny(r, d)
	}
	// The log names the reason and, for a valid token, its name; never the
	// presented token and never the client address (see docs/security.md).
	a.log.Warn("API request refused", "status", d.Status, "reason", d.Reason, "token_name", d.Who.Name, "path", r.URL.Path)
	var msg string
	switch d.Reason {
	case ReasonMissing:
		msg = "authentication required: send Authorization: Bearer <token>"
	case ReasonMalformed:
		msg = "malformed Authorization header: want Bearer <token>"
	case ReasonInvalid:
		msg = "invalid token"
	case ReasonMissingRole:
		msg = "token lacks the required role"
	case ReasonNotLoopback:
		msg = "no API tokens are configured (development mode): only loopback clients are served"
	case ReasonSource:
		msg = "source address not in ingest.allow and no token presented"
	case ReasonThrottled:
		msg = "too many failed authentication attempts; retry later"
		w.Header().Set("Retry-After", strconv.Itoa(int((time.Minute/time.Duration(a.perMin)).Seconds()+0.999)))
	}
	if d.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="retentiond"`)
	}
	httpx.WriteError(w, d.Status, msg)
}

// sourceKey groups IPv6 clients by /64, because one host usually controls a
// whole /64 and could otherwise rotate addresses to escape the limit.
func sourceKey(src netip.Addr) netip.Prefix {
	if !src.IsValid() {
		return netip.Prefix{}
	}
	if src.Is4() {
		return netip.PrefixFrom(src, 32)
	}
	p, _ := src.Prefix(64)
	return p
}

func (a *Authenticator) limiter(src netip.Addr, now time.Time) *rate.Limiter {
	k := sourceKey(src)
	s := a.sources[k]
	if s == nil {
		if len(a.sources) >= maxSources {
			a.sweep(now)
		}
		s = &sourceLimiter{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(a.perMin)), a.perMin)}
		a.sources[k] = s
	}
	s.lastSeen = now
	return s.lim
}

// sweep drops limiters that have refilled completely (they hold no
// information); if that is not enough it drops the least recently seen half.
func (a *Authenticator) sweep(now time.Time) {
	for k, s := range a.sources {
		if s.lim.TokensAt(now) >= float64(a.perMin) {
			delete(a.sources, k)
		}
	}
	if len(a.sources) < maxSources {
		return
	}
	cut := now.Add(-time.Minute)
	for k, s := range a.sources {
		if s.lastSeen.Before(cut) {
			delete(a.sources, k)
		}
	}
}

// spend consumes one failure from src's budget and reports whether there
// was one.
func (a *Authenticator) spend(src netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	return a.limiter(src, now).AllowN(now, 1)
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		return netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	return p
}
