package report

import (
	"errors"
	"net/http"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/signing"
)

// ServeList is GET /api/v1/admin/reports: the stored reports, oldest
// first, with the public key that signs them. Authentication (admin) is
// the caller's job.
func (d *Dir) ServeList(w http.ResponseWriter, r *http.Request) {
	list, err := d.List()
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		PublicKey   string `json:"public_key"`
		Fingerprint string `json:"fingerprint"`
		Reports     []Info `json:"reports"`
	}{d.key.PublicText(), fingerprint(d), nonNil(list)})
}

// ServeReport is GET /api/v1/admin/reports/{name}: one report file,
// byte for byte, so that it can be verified offline.
func (d *Dir) ServeReport(w http.ResponseWriter, r *http.Request) {
	b, err := d.Read(r.PathValue("name"))
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "no such report")
	case err != nil:
		httpx.WriteError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	}
}

func fingerprint(d *Dir) string { return signing.Fingerprint(d.key.Public()) }

func nonNil(l []Info) []Info {
	if l == nil {
		return []Info{}
	}
	return l
}
