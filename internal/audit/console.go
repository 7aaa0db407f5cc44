package audit

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/retentiond/retentiond/internal/httpx"
)

// This file is what the investigator console and the evidence bundle read
// from the audit log: the searches made under a case, the newest lines with
// the chain's verify status, and the sequence number of the running
// request's own audit line.

// Seq returns the sequence number of the allowed line that RequireCase
// wrote for the request running with ctx, so that an answer (an evidence
// bundle) can cite it.
func Seq(ctx context.Context) (int64, bool) {
	rc, ok := ctx.Value(counterKey{}).(*resultCounter)
	if !ok {
		return 0, false
	}
	return rc.seq, true
}

// LineView is one audit line as the console shows it.
type LineView struct {
	Seq      int64    `json:"seq"`
	Time     string   `json:"time"`
	Event    string   `json:"event"`
	Endpoint string   `json:"endpoint,omitempty"`
	Outcome  string   `json:"outcome,omitempty"`
	Ref      int64    `json:"ref,omitempty"`
	Token    string   `json:"token,omitempty"`
	Source   string   `json:"source,omitempty"`
	Case     string   `json:"case,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Query    string   `json:"query,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
	Params   string   `json:"params,omitempty"`
	Status   int      `json:"status,omitempty"`
	Count    *int64   `json:"count,omitempty"`
	Bytes    int64    `json:"bytes,omitempty"`
	SHA256   string   `json:"sha256,omitempty"`
	Duration *float64 `json:"duration_seconds,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func viewOf(l *line) LineView {
	return LineView{Seq: l.Seq, Time: l.Time, Event: l.Event, Endpoint: l.Endpoint, Outcome: l.Outcome, Ref: l.Ref,
		Token: l.Token, Source: l.Source, Case: l.Case, Reason: l.Reason, Query: l.Query, From: l.From, To: l.To,
		Params: l.Params, Status: l.Status, Count: l.Count, Bytes: l.Bytes, SHA256: l.SHA256, Duration: l.Duration, Error: l.Error}
}

// each calls fn for every line of dir that parses and whose hash matches,
// oldest first, with its raw bytes; an error from fn stops the walk. Lines
// that do not parse are skipped: Verify is what judges the chain, and the
// views that use this show its verdict beside them.
func each(dir string, fn func(l *line, raw []byte) error) error {
	files, err := listFiles(dir)
	if err != nil {
		return err
	}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		for len(data) > 0 {
			raw := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				raw, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if l, _, err := parseLine(raw); err == nil {
				if err := fn(l, raw); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// CaseSearches returns the search lines of case caseID (exact match),
// oldest first: refused, allowed, done and error lines alike.
func CaseSearches(dir, caseID string) ([]LineView, error) {
	out := []LineView{}
	err := each(dir, func(l *line, _ []byte) error {
		if l.Event == EventSearch && l.Case == caseID {
			out = append(out, viewOf(l))
		}
		return nil
	})
	return out, err
}

// Tail returns the newest n lines of the log, oldest first.
func Tail(dir string, n int) ([]LineView, error) {
	ring := make([]LineView, 0, n)
	err := each(dir, func(l *line, _ []byte) error {
		if len(ring) == n {
			copy(ring, ring[1:])
			ring = ring[:n-1]
		}
		ring = append(ring, viewOf(l))
		return nil
	})
	return ring, err
}

// CaseHandler serves GET /api/v1/audit/case?case=ID: the searches made
// under that case, for the console's case history. Mount it behind a
// search-role check; it reads the log and writes nothing.
func (l *Log) CaseHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get(ParamCase)
		if strings.TrimSpace(c) == "" {
			httpx.WriteError(w, http.StatusBadRequest, "case: required")
			return
		}
		lines, err := CaseSearches(l.dir, c)
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "read audit log: "+err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"case": c, "lines": lines})
	})
}

// AdminHandler serves GET /api/v1/admin/audit?limit=N: the newest N lines
// (default 200, at most 10,000) and the result of verifying the whole
// chain. Mount it behind an admin-role check.
func (l *Log) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 200
		if s := r.URL.Query().Get("limit"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > 10000 {
				httpx.WriteError(w, http.StatusBadRequest, "limit: want 1 to 10000")
				return
			}
			n = v
		}
		res, err := Verify(l.dir)
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "verify audit log: "+err.Error())
			return
		}
		lines, err := Tail(l.dir, n)
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "read audit log: "+err.Error())
			return
		}
		v := map[string]any{"ok": res.FirstBad == nil, "files": res.Files, "lines_verified": res.Lines,
			"head_seq": res.HeadSeq, "anchored": res.Anchored}
		if res.FirstBad != nil {
			v["first_bad"] = res.FirstBad.String()
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"verify": v, "lines": lines})
	})
}
