package erasure

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/retentiond/retentiond/internal/httpx"
)

// ServeHTTP is POST /api/v1/admin/erase with a JSON Request body (the
// address travels in the body, never in a URL that a proxy might log).
// It answers 200 with {"report_file", "report"} once the erasure is done
// and its report written, 400 for a bad request, 500 (with the partial
// report) when it failed part-way or is partial (report.result "partial":
// report.not_erased names the peers and objects not erased; run it
// again). Mount it behind an admin token.
func (e *Eraser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(w, r)
	if !ok {
		return
	}
	rep, err := e.Erase(r.Context(), req, actorOf(r))
	type answer struct {
		Error      string  `json:"error,omitempty"`
		ReportFile string  `json:"report_file,omitempty"`
		Report     *Report `json:"report,omitempty"`
	}
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, answer{ReportFile: rep.ReportFile, Report: &rep})
	case errors.Is(err, ErrInvalid):
		httpx.WriteJSON(w, http.StatusBadRequest, answer{Error: err.Error()})
	case rep.Result != "":
		httpx.WriteJSON(w, http.StatusInternalServerError, answer{Error: err.Error(), ReportFile: rep.ReportFile, Report: &rep})
	default:
		httpx.WriteJSON(w, http.StatusServiceUnavailable, answer{Error: err.Error()})
	}
}

// readRequest checks that r is a POST and decodes its JSON Request (at most
// 64 KiB, no unknown fields), answering 405 or 400 itself when not: the
// admin endpoint and the peer endpoint take the same body.
func readRequest(w http.ResponseWriter, r *http.Request) (Request, bool) {
	var req Request
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use POST")
		return req, false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return req, false
	}
	return req, true
}
