package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
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

// selfSigned writes a throw-away certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestTLSHandshakeErrorsHideClientAddress: a failed TLS handshake is logged
// by net/http through ErrorLog with the client's address; the daemon's log
// must not hold it.
func TestTLSHandshakeErrorsHideClientAddress(t *testing.T) {
	cert, key := selfSigned(t)
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
