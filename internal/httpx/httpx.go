// Package httpx holds the one way the API's handlers answer in JSON, so
// that every endpoint sends the same headers and the same error shape. It
// depends on nothing internal.
package httpx

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers v as JSON with status. API answers are never cached:
// they name records, cases and tokens, which a shared cache must not keep.
// Its error is the client's write error.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	return write(w, status, v, false)
}

// WriteError answers the API's error shape, {"error": msg}, with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	_ = write(w, status, errorBody{msg}, false)
}

// WriteJSONIndent is WriteJSON indented by two spaces, for the answers an
// administrator reads as they come (the case registry's).
func WriteJSONIndent(w http.ResponseWriter, status int, v any) error {
	return write(w, status, v, true)
}

// WriteErrorIndent is WriteError indented as WriteJSONIndent.
func WriteErrorIndent(w http.ResponseWriter, status int, msg string) {
	_ = write(w, status, errorBody{msg}, true)
}

// errorBody is the API's error shape.
type errorBody struct {
	Error string `json:"error"`
}

func write(w http.ResponseWriter, status int, v any, indent bool) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}
