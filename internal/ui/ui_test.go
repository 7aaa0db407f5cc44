package ui

import (
	"io"
	"io/fs"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerHeadersAndFiles(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ path, ctype string }{
		{"/ui/", "text/html"}, {"/ui/app.js", "text/javascript"}, {"/ui/app.css", "text/css"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		hd := rec.Header()
		if rec.Code != 200 || !strings.HasPrefix(hd.Get("Content-Type"), c.ctype) || hd.Get("Content-Security-Policy") != CSP ||
			hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %d %v", c.path, rec.Code, hd)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/nope.js", nil))
	if rec.Code != 404 || rec.Header().Get("Content-Security-Policy") != CSP {
		t.Fatalf("missing file: %d %v", rec.Code, rec.Header())
	}
}

// TestAssetsSelfContained keeps the console offline and its CSP honest: no
// URL to another host, no inline script or style, no event-handler
// attributes, and no HTML sink in the script.
func TestAssetsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	bad := map[string]*regexp.Regexp{
		"index.html": regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=`),
		"app.js":     regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|localStorage|sessionStorage|document\.cookie`),
	}
	err := fs.WalkDir(Assets(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, _ := Assets().Open(p)
		b, _ := io.ReadAll(f)
		f.Close()
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to another host: %q", p, m)
		}
		if re := bad[p]; re != nil {
			if m := re.Find(b); m != nil {
				t.Errorf("%s: %q breaks the CSP or the text-only rule", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
