package evidence

import (
	"bufio"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/search"
)

// HandlerOptions configure the evidence endpoints.
type HandlerOptions struct {
	Search   *search.Handler // parses and runs the search, as the search endpoints do
	Key      *Key
	AuditDir string // read for the case's earlier searches
	Version  string // daemon version, recorded in bundle.json
	Now      func() time.Time
	Logger   *slog.Logger
}

// Handler serves GET /api/v1/evidence (a bundle) and GET
// /api/v1/evidence/key (the public key).
type Handler struct{ opts HandlerOptions }

// NewHandler builds the evidence handlers.
func NewHandler(opts HandlerOptions) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{opts: opts}
}

// ServeKey answers {"algorithm": "ed25519", "public_key": base64,
// "fingerprint": hex SHA-256}: what `retentiond evidence verify --key`
// pins. It is public by nature.
func (h *Handler) ServeKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	pub := h.opts.Key.PublicText()
	_, _ = w.Write([]byte(`{"algorithm":"ed25519","public_key":"` + pub + `","fingerprint":"` + Fingerprint(h.opts.Key.Public()) + `"}` + "\n"))
}

// unsafeName matches what may not appear in a download's file name.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ServeBundle answers GET /api/v1/evidence?q&from&to&case&reason with a
// bundle of every matching record (no limit). Mount it behind audit.Guard:
// the guard refuses a request without case and reason and writes the audit
// line whose sequence number the bundle cites. The zip is streamed; if the
// search fails part-way the zip is left without its central directory, so
// no reader takes it for a complete bundle.
func (h *Handler) ServeBundle(w http.ResponseWriter, r *http.Request) {
	req, err := h.opts.Search.Prepare(r)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	caseID := q.Get(audit.ParamCase)
	seq, _ := audit.Seq(r.Context())
	var earlier []AuditRef
	if h.opts.AuditDir != "" {
		lines, err := audit.CaseSearches(h.opts.AuditDir, caseID)
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "read the audit log for the case history: "+err.Error())
			return
		}
		earlier = caseRefs(lines, seq)
	}
	now := h.opts.Now().UTC()
	meta := Meta{Case: caseID, Reason: q.Get(audit.ParamReason), Query: req.Query.Text, From: req.From, To: req.To,
		AuditSeq: seq, CaseSearches: earlier, Daemon: h.opts.Version}
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		meta.ExportedBy = p.Name
		if p.Source.IsValid() {
			meta.Source = p.Source.String()
		}
	}
	name := "evidence-" + unsafeName.ReplaceAllString(caseID, "_") + "-" + now.Format("20060102T150405Z") + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	out, finish := h.opts.Search.GuardWrites(w)
	bw := bufio.NewWriterSize(out, 64<<10)
	zw := NewWriter(bw, h.opts.Key, now)
	rw, err := zw.Records()
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var buf []byte
	n, skipped, err := h.opts.Search.Export(r, req, func(rec record.Record) error {
		buf = search.AppendNDJSON(buf[:0], &rec)
		_, err := rw.Write(buf)
		return err
	})
	if err != nil {
		// The status may be sent already; an unfinished zip is unreadable,
		// which is the honest outcome.
		h.opts.Logger.Error("evidence export failed", "err", err)
		bw.Flush()
		finish(err)
		return
	}
	meta.Records = n
	for _, f := range skipped {
		meta.Skipped = append(meta.Skipped, f.File)
	}
	err = zw.Finish(meta)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		h.opts.Logger.Error("evidence export failed", "err", err)
	}
	finish(err)
}

// caseRefs keeps the allowed lines before seq, each with the count of its
// done line.
func caseRefs(lines []audit.LineView, seq int64) []AuditRef {
	counts := map[int64]*int64{}
	for _, l := range lines {
		if l.Outcome == audit.OutcomeDone && l.Ref != 0 {
			counts[l.Ref] = l.Count
		}
	}
	out := []AuditRef{}
	for _, l := range lines {
		if l.Outcome != audit.OutcomeAllowed || (seq != 0 && l.Seq >= seq) {
			continue
		}
		out = append(out, AuditRef{Seq: l.Seq, Time: l.Time, Endpoint: l.Endpoint, Outcome: l.Outcome, Token: l.Token,
			Query: l.Query, From: l.From, To: l.To, Count: counts[l.Seq]})
	}
	return out
}
