package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/httpx"
)

// Limits on the justification a search must carry. Case ids are short
// references into an incident register; reasons are a sentence or two.
const (
	MaxCaseLength   = 128
	MaxReasonLength = 1000
	// maxRefusedQuery bounds what a refused request (possibly an
	// unauthenticated one) can make the log store.
	maxRefusedQuery = 4096
)

// Parameter names a guarded request must carry.
const (
	ParamCase   = "case"
	ParamReason = "reason"
)

// Guard is the whole gate for a search endpoint: a token with the search
// role, a case and a reason, and an audit line fsynced before next runs.
// Every attempt leaves exactly one refused line, or an allowed line followed
// by a done or error line. Throttled (429) attempts are counted in metrics
// only, so that a flood cannot fill the disk with audit lines.
func Guard(a *auth.Authenticator, l *Log, endpoint string, next http.Handler) http.Handler {
	return a.RequireWith(auth.RoleSearch, RequireCase(l, endpoint, next), func(r *http.Request, d auth.Denial) {
		e := requestEntry(r, endpoint, true)
		e.Token = d.Who.Name
		e.Outcome = OutcomeRefused
		e.Status = d.Status
		e.Error = "authentication: " + d.Reason
		l.metrics.searches.WithLabelValues(endpoint, resultRefused).Inc()
		if _, err := l.Append(e); err != nil {
			l.log.Error("audit line for a refused request not written", "endpoint", endpoint, "err", err)
		}
	})
}

// RequireCase refuses (400) a request without a valid case and reason, and
// records the refusal. For an acceptable request it writes an allowed line
// and only after that line is fsynced calls next; if the line cannot be
// written it answers 503 and next never runs, so no result leaves the
// daemon unaudited. When next returns, a done (or error) line records the
// status, the result count (see ReportCount), the bytes sent, their
// SHA-256 (an export file's digest, to match it to this line) and the
// duration. The principal, if any, comes from the auth middleware.
func RequireCase(l *Log, endpoint string, next http.Handler) http.Handler {
	return requireCase(l, endpoint, next, true)
}

// Forwarded audits a cluster peer's request (docs/scale-out.md): another
// node asks this one for its data not yet in the bucket on behalf of a
// search it has already authorised and audited under its own case
// registry. The request must carry the case and reason it forwarded, and
// gets the allowed line (fsynced before next runs) and the done line that
// RequireCase writes, whose token field names the asking node
// (auth.NodePrefix); the case check is not consulted, because the case
// registry is the asking node's. Authenticate the node before it
// (auth.RequireNode).
func Forwarded(l *Log, endpoint string, next http.Handler) http.Handler {
	return requireCase(l, endpoint, next, false)
}

func requireCase(l *Log, endpoint string, next http.Handler, checkCase bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if msg := checkRequest(q); msg != "" {
			l.refuse(w, r, endpoint, &Refusal{Status: http.StatusBadRequest, Message: msg})
			return
		}
		if c := l.check.Load(); c != nil && checkCase {
			next, ref := (*c)(r, endpoint)
			if ref != nil {
				l.refuse(w, r, endpoint, ref)
				return
			}
			r = next
		}
		e := requestEntry(r, endpoint, false)
		e.Outcome = OutcomeAllowed
		start := l.now()
		seq, err := l.Append(e)
		if err != nil {
			l.metrics.searches.WithLabelValues(endpoint, resultUnavailable).Inc()
			httpx.WriteError(w, http.StatusServiceUnavailable, "the audit log cannot be written, so the search was not run")
			return
		}
		rc := &resultCounter{seq: seq}
		rc.n.Store(-1)
		sw := &statusWriter{ResponseWriter: w, digest: sha256.New()}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), counterKey{}, rc)))

		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		e.Outcome, e.Ref, e.Status = OutcomeDone, seq, status
		e.Count, e.Bytes, e.Duration = rc.n.Load(), sw.bytes, l.now().Sub(start)
		e.SHA256 = hex.EncodeToString(sw.digest.Sum(nil))
		if p := rc.partial.Load(); p != nil && e.Error == "" {
			e.Error = "partial answer: " + *p
		}
		result := resultCompleted
		if status >= 400 {
			e.Outcome, result = OutcomeError, resultFailed
		}
		if a := rc.aborted.Load(); a != nil {
			// The status line may say 200, but the answer was cut short.
			e.Outcome, result = OutcomeError, resultFailed
			if e.Error == "" {
				e.Error = *a
			} else {
				e.Error += "; " + *a
			}
		}
		l.metrics.searches.WithLabelValues(endpoint, result).Inc()
		if _, err := l.Append(e); err != nil {
			// The allowed line is already durable; this only loses the
			// count and duration. Say so loudly.
			l.log.Error("audit completion line not written", "endpoint", endpoint, "ref", seq, "err", err)
		}
	})
}

// Refusal is why a guarded request may not run. The client sees Status and
// Message; the audit line records both.
type Refusal struct {
	Status  int    // 400 for a malformed request, 403 for a case that does not permit it
	Message string // a sentence for the client and the audit line; never logged
}

// CaseCheck decides whether a guarded request (authenticated, with a valid
// case and reason) may run under the case it names. It returns the request
// to run, possibly rewritten to the case's bounds (its time range and
// scope), so that the allowed line records exactly what ran; or a refusal.
// It is called before the allowed line is written.
type CaseCheck func(r *http.Request, endpoint string) (*http.Request, *Refusal)

// SetCaseCheck makes every guarded endpoint of l (search, count, stats,
// export, and any later one such as the console's) consult c before it runs
// a request. The case registry (internal/cases) sets it at start-up, before
// the server accepts requests; nil removes it. It lives on the Log, not on
// each Guard, so that no guarded endpoint can be mounted without it.
func (l *Log) SetCaseCheck(c CaseCheck) {
	if c == nil {
		l.check.Store(nil)
		return
	}
	l.check.Store(&c)
}

// refuse records a refused guarded request and answers it.
func (l *Log) refuse(w http.ResponseWriter, r *http.Request, endpoint string, ref *Refusal) {
	e := requestEntry(r, endpoint, true)
	e.Outcome = OutcomeRefused
	e.Status = ref.Status
	e.Error = ref.Message
	l.metrics.searches.WithLabelValues(endpoint, resultRefused).Inc()
	if _, err := l.Append(e); err != nil {
		l.log.Error("audit line for a refused request not written", "endpoint", endpoint, "err", err)
	}
	httpx.WriteError(w, ref.Status, ref.Message)
}

// checkRequest returns why a search request cannot be run and audited, or
// "". Every parameter must be valid UTF-8: the audit line is JSON, which
// would store U+FFFD instead of the bytes, and then the log would not say
// exactly what ran. Case and reason must be present, bounded, and free of
// control characters and of invisible format characters (Unicode Cf: bidi
// overrides and isolates, zero-width characters), which would make the
// log read differently from what it holds (Trojan Source).
func checkRequest(q url.Values) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if !utf8.ValidString(k) {
			return "a parameter name is not valid UTF-8"
		}
		for _, v := range q[k] {
			if !utf8.ValidString(v) {
				return fmt.Sprintf("parameter %q is not valid UTF-8", k)
			}
		}
	}
	for _, p := range []struct {
		name string
		max  int
	}{{ParamCase, MaxCaseLength}, {ParamReason, MaxReasonLength}} {
		v := q.Get(p.name)
		if strings.TrimSpace(v) == "" {
			return fmt.Sprintf("every search must name the incident it serves and why: parameter %q is required", p.name)
		}
		if msg := CheckText("parameter "+strconv.Quote(p.name), v, p.max); msg != "" {
			return msg
		}
	}
	return ""
}

// CheckText returns why a client-supplied text (a case id, a reason, a
// title) cannot go into an audit line, or "": it must be valid UTF-8, at
// most max characters, and free of control characters and invisible format
// characters (bidi overrides and isolates, zero-width characters), which
// would make the log read differently from what it holds (Trojan Source).
// what names the text in the message. The search parameters and the case
// registry share this one rule.
func CheckText(what, v string, max int) string {
	switch {
	case !utf8.ValidString(v):
		return what + " is not valid UTF-8"
	case strings.IndexFunc(v, isControl) >= 0:
		return what + " contains control characters"
	case strings.IndexFunc(v, isFormat) >= 0:
		return what + " contains invisible format characters (bidi controls, zero-width characters)"
	case utf8.RuneCountInString(v) > max:
		return fmt.Sprintf("%s is longer than %d characters", what, max)
	}
	return ""
}

// isFormat reports whether r is an invisible format character (Unicode
// category Cf), which includes every bidi control.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// secretParam reports whether a parameter name suggests a credential. Such
// a value is never written to the audit log, whatever it holds.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "key", "secret", "pass", "auth", "credential", "session", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// tokenRE matches a retentiond token, or a piece of one long enough to
// matter, wherever it appears.
var tokenRE = regexp.MustCompile(auth.TokenPrefix + `[A-Za-z0-9_-]{8,}`)

// redactedToken replaces a token-shaped string in an audit line.
const redactedToken = auth.TokenPrefix + "[redacted]"

// clean prepares a client-supplied string for the audit line: tokens are
// redacted, and bytes that are not UTF-8 (possible only on refused lines)
// are shown as \xNN instead of being turned into U+FFFD by JSON.
func clean(s string) string {
	if strings.Contains(s, auth.TokenPrefix) {
		s = tokenRE.ReplaceAllLiteralString(s, redactedToken)
	}
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, s[0])
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// requestEntry fills the parts of a line that come from the request. For a
// refused request the client-supplied strings are cut to bounded lengths.
func requestEntry(r *http.Request, endpoint string, refused bool) Entry {
	q := r.URL.Query()
	e := Entry{Endpoint: endpoint, Count: -1}
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		e.Token = p.Name
		if p.Source.IsValid() {
			e.Source = p.Source.String()
		}
	}
	if e.Source == "" {
		if a := auth.SourceAddr(r); a.IsValid() {
			e.Source = a.String()
		}
	}
	e.Case, e.Reason, e.Query = clean(q.Get(ParamCase)), clean(q.Get(ParamReason)), clean(q.Get("q"))
	e.From, e.To = clean(q.Get("from")), clean(q.Get("to"))
	rest := url.Values{}
	for k, vs := range q {
		switch k {
		case ParamCase, ParamReason, "q", "from", "to":
			continue
		}
		k = clean(k)
		for _, v := range vs {
			if secretParam(k) {
				v = "[redacted]"
			}
			rest[k] = append(rest[k], clean(v))
		}
	}
	e.Params = rest.Encode()
	if refused {
		e.Case = cut(e.Case, MaxCaseLength)
		e.Reason = cut(e.Reason, MaxReasonLength)
		e.Query = cut(e.Query, maxRefusedQuery)
		e.From, e.To = cut(e.From, 64), cut(e.To, 64)
		e.Params = cut(e.Params, maxRefusedQuery)
	}
	return e
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = strings.ToValidUTF8(s[:n], "")
	return s + "…[truncated]"
}

type counterKey struct{}

type resultCounter struct {
	seq     int64 // of the allowed line (see Seq)
	n       atomic.Int64
	partial atomic.Pointer[string]
	aborted atomic.Pointer[string]
}

// ReportCount records the number of results a guarded handler returned, for
// the done line. Handlers call it once they know the count (a streaming
// search at its end); outside a guarded request it does nothing.
func ReportCount(ctx context.Context, n int64) {
	if rc, ok := ctx.Value(counterKey{}).(*resultCounter); ok {
		rc.n.Store(n)
	}
}

// ReportPartial records that a guarded handler's answer is incomplete and
// why (damaged segment files it left out): the done line carries it in its
// error field, with the outcome still done, so that the audit trail shows
// which disclosures were partial. Outside a guarded request it does nothing.
func ReportPartial(ctx context.Context, why string) {
	if rc, ok := ctx.Value(counterKey{}).(*resultCounter); ok {
		rc.partial.Store(&why)
	}
}

// ReportAborted records that a guarded handler's answer ended in an error
// (a failed or timed-out search, a client that stopped reading or went
// away), perhaps after a 200 status line and some rows: the done line's
// outcome is then error, with why, so the audit trail never shows a cut-short
// disclosure as complete. Outside a guarded request it does nothing.
func ReportAborted(ctx context.Context, why string) {
	if rc, ok := ctx.Value(counterKey{}).(*resultCounter); ok {
		rc.aborted.Store(&why)
	}
}

// statusWriter records the status, the bytes written and their SHA-256,
// and keeps streaming working: Flush is passed on, and Unwrap lets
// http.ResponseController reach the underlying writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	digest hash.Hash // of the bytes the writer below accepted
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	s.digest.Write(b[:n])
	return n, err
}

func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
