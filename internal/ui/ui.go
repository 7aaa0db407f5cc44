// Package ui serves the investigator console: a single page, embedded in
// the binary, that works offline (no CDN, fonts or scripts from elsewhere)
// and talks only to the daemon's own audited API. docs/console.md describes
// it, docs/security.md its session design.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Assets returns the console's files (index.html, app.js, app.css).
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory exists: an invariant of the build
	}
	return sub
}

// CSP is the console's Content-Security-Policy. Scripts and styles come
// only from the daemon itself, never inline; nothing can be framed or
// posted elsewhere; and Trusted Types make any innerHTML-style sink throw,
// so a record's text can only ever reach the page as text.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// SetSecurityHeaders sets the headers every console response carries.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	// The assets change with the binary; revalidate rather than guess.
	h.Set("Cache-Control", "no-cache")
}

// Handler serves the console under /ui/.
func Handler() http.Handler {
	files := http.StripPrefix("/ui/", http.FileServerFS(Assets()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}
