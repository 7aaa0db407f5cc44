package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestTLSHandshakeErrorsHideClientAddress: a failed TLS handshake is logged
// by net/http through ErrorLog with the client's address; the daemon's log
// must not hold it.
func TestTLSHandshakeErrorsHideClientAddress(t *testing.T) {
	cert, key, _ := selfSigned(t, t.TempDir())
	logs := &syncBuffer{}
	s, err := New(Options{Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Shutdown(context.Background())
		<-done
	}()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // plain HTTP to the TLS port
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "TLS handshake error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "TLS handshake error") {
		t.Fatalf("no handshake error logged: %q", out)
	}
	if strings.Contains(out, "127.0.0.1") || strings.Contains(out, local.String()) {
		t.Errorf("log holds the client address: %s", out)
	}
}

func TestScrubAddrs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http: TLS handshake error from 198.51.100.7:51234: EOF", "http: TLS handshake error from <addr>: EOF"},
		{"http: TLS handshake error from [2001:db8::7]:443: remote error", "http: TLS handshake error from <addr>: remote error"},
		{"http: panic serving 203.0.113.9:1234: boom", "http: panic serving <addr>: boom"},
		{"read tcp 127.0.0.1:8080->192.0.2.1:5555: read: connection reset by peer", "read tcp <addr>-><addr>: read: connection reset by peer"},
		{"http2: error reading preface from client 2001:db8::1: EOF", "http2: error reading preface from client <addr>: EOF"},
		{"http: Accept error: too many open files; retrying in 5ms", "http: Accept error: too many open files; retrying in 5ms"},
		{"tls: client offered only unsupported versions: [302 301]", "tls: client offered only unsupported versions: [302 301]"},
		{"version 1.26.0", "version 1.26.0"},
	}
	for _, tc := range tests {
		if got := scrubAddrs(tc.in); got != tc.want {
			t.Errorf("scrubAddrs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
