package httpx

import (
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tt := range []struct {
		name   string
		write  func(*httptest.ResponseRecorder)
		status int
		body   string
	}{
		{"json", func(w *httptest.ResponseRecorder) { _ = WriteJSON(w, 201, map[string]int{"a": 1}) }, 201, "{\"a\":1}\n"},
		{"indented", func(w *httptest.ResponseRecorder) { _ = WriteJSONIndent(w, 200, map[string]int{"a": 1}) }, 200, "{\n  \"a\": 1\n}\n"},
		{"indented error", func(w *httptest.ResponseRecorder) { WriteErrorIndent(w, 404, "no") }, 404, "{\n  \"error\": \"no\"\n}\n"},
		{"error escapes as encoding/json", func(w *httptest.ResponseRecorder) { WriteError(w, 400, "bad <q> \xff") }, 400, "{\"error\":\"bad \\u003cq\\u003e \\ufffd\"}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.write(w)
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Errorf("%d %q; want %d %q", w.Code, w.Body.String(), tt.status, tt.body)
			}
			if w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}
