package cases

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/httpx"
)

// maxBody bounds a request body of the case API; a case is a few short
// strings.
const maxBody = 64 << 10

// View is a case as the API shows it: the case, and whether searches may
// run under it now (approved, not expired), which is what a console needs
// to offer it.
type View struct {
	Case
	Searchable bool `json:"searchable"`
}

func (r *Registry) view(c Case) View {
	c.State = c.StateAt(r.now())
	return View{Case: c, Searchable: c.State == StateApproved}
}

// ApproveRequest is the body of POST /api/v1/cases/{id}/approve (optional
// for a normal approval).
type ApproveRequest struct {
	Emergency     bool   `json:"emergency,omitempty"`
	Justification string `json:"justification,omitempty"`
}

// CloseRequest is the body of POST /api/v1/cases/{id}/close (optional).
type CloseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Handler serves the case API (docs/security.md, "The case API"):
//
//	GET  /api/v1/cases[?state=open|pending|approved|closed|expired|all]  search or admin: {"cases": [View...]}
//	GET  /api/v1/cases/{id}                                              search or admin: View
//	GET  /api/v1/cases/{id}/audit                                        admin: {"lines": [audit line...]}
//	POST /api/v1/cases            OpenRequest                            admin: 201 View
//	POST /api/v1/cases/{id}/approve  ApproveRequest (optional)           admin: 200 View
//	POST /api/v1/cases/{id}/close    CloseRequest (optional)             admin: 200 View
//
// Errors are {"error": "..."} with 400 (invalid), 403 (four-eyes), 404 (no
// such case), 409 (wrong state, duplicate id) or 503 (audit log or registry
// not writable). Investigators may read the registry, to know which cases
// they may search under; only admins change it or read a case's audit
// trail (which holds other investigators' queries).
func (r *Registry) Handler(a *auth.Authenticator) http.Handler {
	read := func(h http.HandlerFunc) http.Handler {
		return a.RequireAny([]auth.Role{auth.RoleSearch, auth.RoleAdmin}, h)
	}
	admin := func(h http.HandlerFunc) http.Handler { return a.Require(auth.RoleAdmin, h) }
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/cases", read(r.serveList))
	mux.Handle("POST /api/v1/cases", admin(r.serveOpen))
	mux.Handle("GET /api/v1/cases/{id}", read(r.serveGet))
	mux.Handle("GET /api/v1/cases/{id}/audit", admin(r.serveAudit))
	mux.Handle("POST /api/v1/cases/{id}/approve", admin(r.serveApprove))
	mux.Handle("POST /api/v1/cases/{id}/close", admin(r.serveClose))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteErrorIndent(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", req.Method, req.URL.Path))
	})
	return mux
}

// actor is the caller of a change, from the auth middleware.
func actor(req *http.Request) Actor {
	p, _ := auth.PrincipalFrom(req.Context())
	var a Actor
	a.Name = p.Name
	if p.Source.IsValid() {
		a.Source = p.Source.String()
	}
	return a
}

func (r *Registry) serveList(w http.ResponseWriter, req *http.Request) {
	var states []State
	switch s := req.URL.Query().Get("state"); s {
	case "", "all":
	case "open":
		states = []State{StatePending, StateApproved}
	case string(StatePending), string(StateApproved), string(StateClosed), string(StateExpired):
		states = []State{State(s)}
	default:
		httpx.WriteErrorIndent(w, http.StatusBadRequest, "state must be open, pending, approved, closed, expired or all")
		return
	}
	views := []View{}
	for _, c := range r.List(states...) {
		views = append(views, r.view(c))
	}
	httpx.WriteJSONIndent(w, http.StatusOK, map[string]any{"cases": views})
}

func (r *Registry) serveGet(w http.ResponseWriter, req *http.Request) {
	c, ok := r.Get(req.PathValue("id"))
	if !ok {
		httpx.WriteErrorIndent(w, http.StatusNotFound, "no case "+req.PathValue("id"))
		return
	}
	httpx.WriteJSONIndent(w, http.StatusOK, r.view(c))
}

func (r *Registry) serveAudit(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if err := ValidID(id); err != nil {
		httpx.WriteErrorIndent(w, http.StatusBadRequest, err.Error())
		return
	}
	lines, err := audit.CaseLines(r.opts.Log.Dir(), id)
	if err != nil {
		httpx.WriteErrorIndent(w, http.StatusInternalServerError, "read the audit log: "+err.Error())
		return
	}
	raw := make([]json.RawMessage, len(lines))
	for i, l := range lines {
		raw[i] = l
	}
	httpx.WriteJSONIndent(w, http.StatusOK, map[string]any{"lines": raw})
}

func (r *Registry) serveOpen(w http.ResponseWriter, req *http.Request) {
	var o OpenRequest
	if !decode(w, req, &o, true) {
		return
	}
	c, err := r.Open(actor(req), o)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSONIndent(w, http.StatusCreated, r.view(c))
}

func (r *Registry) serveApprove(w http.ResponseWriter, req *http.Request) {
	var a ApproveRequest
	if !decode(w, req, &a, false) {
		return
	}
	c, err := r.Approve(actor(req), req.PathValue("id"), a.Emergency, a.Justification)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSONIndent(w, http.StatusOK, r.view(c))
}

func (r *Registry) serveClose(w http.ResponseWriter, req *http.Request) {
	var c CloseRequest
	if !decode(w, req, &c, false) {
		return
	}
	cs, err := r.Close(actor(req), req.PathValue("id"), c.Reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSONIndent(w, http.StatusOK, r.view(cs))
}

// decode reads a JSON body strictly (unknown fields are errors, so a
// misspelt "emergency" is not silently a normal approval). An empty body
// is accepted where the body is optional.
func decode(w http.ResponseWriter, req *http.Request, v any, required bool) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		httpx.WriteErrorIndent(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: %v", err))
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if required {
			httpx.WriteErrorIndent(w, http.StatusBadRequest, "a JSON body is required")
			return false
		}
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		httpx.WriteErrorIndent(w, http.StatusBadRequest, fmt.Sprintf("request body is not the expected JSON object: %v", err))
		return false
	}
	return true
}

func writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		httpx.WriteErrorIndent(w, e.Status, e.Msg)
		return
	}
	httpx.WriteErrorIndent(w, http.StatusInternalServerError, err.Error())
}
