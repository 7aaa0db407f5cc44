package hold

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/httpx"
)

// Handler serves the hold API; mount it behind an admin token:
//
//	GET  /api/v1/admin/holds                 every hold
//	POST /api/v1/admin/holds                 place one: {"case","from","to","reason","until"}
//	POST /api/v1/admin/holds/{id}/release    release one: {"reason"}
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/admin/holds", func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"holds": r.List()})
	})
	mux.HandleFunc("POST /api/v1/admin/holds", func(w http.ResponseWriter, req *http.Request) {
		var in Request
		if !readJSON(w, req, &in) {
			return
		}
		h, err := r.Add(in, actor(req))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, h)
	})
	mux.HandleFunc("POST /api/v1/admin/holds/{id}/release", func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			Reason string `json:"reason"`
		}
		if !readJSON(w, req, &in) {
			return
		}
		h, err := r.Release(req.PathValue("id"), in.Reason, actor(req))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, h)
	})
	return mux
}

// actor is who made the request, as the auth middleware found it.
func actor(r *http.Request) Actor {
	var a Actor
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		a.Token = p.Name
	}
	if s := auth.SourceAddr(r); s.IsValid() {
		a.Source = s.String()
	}
	return a
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	}
	httpx.WriteError(w, status, err.Error())
}
