package server

import (
	"bufio"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/connlimit"
	"github.com/retentiond/retentiond/internal/httpx"
)

// gathered returns the value of an unlabelled counter or gauge in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// openFDs counts the test process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// startServer runs a server whose ingest route reads the body and answers
// 200, and stops it at the end of the test.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	opts.Routes.Ingest = cmp.Or[http.Handler](opts.Routes.Ingest, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]int{"accepted": strings.Count(string(b), "\n")})
	}))
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func ingestOnce(addr string) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Post("http://"+addr+"/api/v1/ingest", "application/x-ndjson", strings.NewReader("{}\n"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &net.AddrError{Err: resp.Status, Addr: addr}
	}
	return nil
}

// TestConnectionFlood: a flood of connections that send nothing, far beyond
// http.max_connections, holds at most the cap's worth of descriptors (the
// rest are refused and counted), and a real ingest request succeeds once
// the idle ones are old enough to be reaped for it.
func TestConnectionFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	const max, flood = 8, 40
	reg := prometheus.NewRegistry()
	s := startServer(t, Options{MaxConnections: max, Registerer: reg, Gatherer: reg})
	addr := s.Addr().String()
	if err := ingestOnce(addr); err != nil { // warm up: the server's own descriptors exist
		t.Fatal(err)
	}
	before := openFDs(t)
	for range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// Each client end is one descriptor of this process; the server's ends
	// of the flood may add at most the cap (plus one being refused).
	deadline := time.Now().Add(10 * time.Second)
	for {
		grown := openFDs(t) - before - flood
		st := s.conns.Stats()
		handled := st.Refused + st.Evicted + st.Open
		if grown > max+1 {
			t.Fatalf("the server holds %d descriptors for %d idle connections at http.max_connections %d", grown, flood, max)
		}
		if handled >= flood {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server handled %v of %d connections in 10s", handled, flood)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.conns.Stats(); st.Open != max || st.Refused == 0 {
		t.Errorf("after the flood: %+v, want %d open and refusals counted", st, max)
	}
	if got := gathered(t, reg, "retentiond_http_connections_refused_total"); got != float64(s.conns.Stats().Refused) {
		t.Errorf("refusal metric %v, want %d", got, s.conns.Stats().Refused)
	}
	// Once they are idle past the minimum, a real request reaps one.
	time.Sleep(connlimit.DefaultMinIdle + 200*time.Millisecond)
	evicted := s.conns.Stats().Evicted
	if err := ingestOnce(addr); err != nil {
		t.Fatalf("real ingest request behind %d idle connections: %v", flood, err)
	}
	if got := s.conns.Stats().Evicted; got != evicted+1 {
		t.Errorf("evictions %v, want %v", got, evicted+1)
	}
	if grown := openFDs(t) - before - flood; grown > max+1 {
		t.Errorf("after the request the server holds %d descriptors, cap %d", grown, max)
	}
}

// TestSlowBody: a body trickled below http.min_body_rate is cut after the
// grace, long before http.read_timeout, freeing its connection; a handler
// that pauses between reads (store back-pressure) does not use up the
// client's allowance.
func TestSlowBody(t *testing.T) {
	const grace = 300 * time.Millisecond
	t.Run("trickle cut", func(t *testing.T) {
		s := startServer(t, Options{ReadHeaderTimeout: grace, ReadTimeout: time.Minute, MinBodyRate: 1000})
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("a trickled body was accepted")
			}
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("a body trickled at 10 bytes/s still held its connection after %s (read_timeout 1m)", time.Since(start).Round(time.Second))
		}
	})
	t.Run("server pauses do not count", func(t *testing.T) {
		paused := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			first := make([]byte, 100)
			if _, err := io.ReadFull(r.Body, first); err != nil {
				httpx.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			time.Sleep(3 * grace) // as if waiting for the store
			rest, err := io.ReadAll(r.Body)
			if err != nil {
				httpx.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]int{"bytes": len(first) + len(rest)})
		})
		s := startServer(t, Options{ReadHeaderTimeout: grace, ReadTimeout: time.Minute, MinBodyRate: 1000,
			Routes: Routes{Ingest: paused}})
		resp, err := http.Post("http://"+s.Addr().String()+"/api/v1/ingest", "text/plain", strings.NewReader(strings.Repeat("y", 64<<10)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	t.Run("context kept after the body", func(t *testing.T) {
		// The allowance left when the body ends is short; a handler that
		// works longer (an fsync) must not lose its request context to the
		// server's background read hitting that deadline.
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				httpx.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			time.Sleep(3 * grace)
			if err := r.Context().Err(); err != nil {
				httpx.WriteError(w, http.StatusInternalServerError, "request context: "+err.Error())
				return
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		s := startServer(t, Options{ReadHeaderTimeout: grace, ReadTimeout: time.Minute, MinBodyRate: 1000,
			Routes: Routes{Ingest: slow}})
		resp, err := http.Post("http://"+s.Addr().String()+"/api/v1/ingest", "text/plain", strings.NewReader("short body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestConnectionCapTLS: over TLS the server still knows which connections
// are busy (through *tls.Conn), so a request in progress is never evicted
// for a newcomer, however long it takes; the newcomer is refused instead.
func TestConnectionCapTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	release := make(chan struct{})
	entered := make(chan struct{})
	blocking := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(entered)
		<-release
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s := startServer(t, Options{CertFile: certFile, KeyFile: keyFile, MaxConnections: 1, Routes: Routes{Ingest: blocking}})
	// The client offers HTTP/2 as curl does; net/http would not report
	// an HTTP/2 connection's requests to ConnState, so the server must
	// answer in HTTP/1.1.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	url := "https://" + s.Addr().String() + "/api/v1/ingest"
	done := make(chan error, 1)
	go func() {
		resp, err := client.Post(url, "text/plain", strings.NewReader("x\n"))
		if err == nil {
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
				err = fmt.Errorf("status %d over %s", resp.StatusCode, resp.Proto)
			}
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	time.Sleep(connlimit.DefaultMinIdle + 200*time.Millisecond) // past the eviction minimum
	c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: pool})
	if err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a second TLS connection was served at a cap of 1")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the request in progress: %v", err)
	}
	if st := s.conns.Stats(); st.Evicted != 0 || st.Refused != 1 {
		t.Fatalf("connections %+v, want 1 refused and nothing evicted", st)
	}
}
