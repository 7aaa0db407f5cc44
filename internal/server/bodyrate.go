package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// minRateBody makes a request body that arrives slower than minRate bytes
// per second (on average, after a grace) fail with a timeout, so that a
// client trickling a body cannot hold a connection slot for the whole
// http.read_timeout. Only the time spent waiting inside Read counts: a
// handler that pauses between reads (back-pressure from the store) does not
// use up the client's allowance. The absolute limit of ReadTimeout stays.
func minRateBody(h http.Handler, minRate int64, grace, readTimeout time.Duration) http.Handler {
	if minRate <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			b := &rateBody{body: r.Body, rc: http.NewResponseController(w), minRate: minRate, grace: grace}
			if readTimeout > 0 {
				b.limit = time.Now().Add(readTimeout)
			}
			r.Body = b
		}
		h.ServeHTTP(w, r)
	})
}

// errBodyTooSlow ends a body that used up its time allowance.
var errBodyTooSlow = errors.New("request body arrives too slowly")

type rateBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	minRate int64
	grace   time.Duration
	limit   time.Time // ReadTimeout's absolute deadline; zero: none
	read    int64
	waited  time.Duration
}

// Read sets the read deadline to what is left of the allowance: the grace
// plus read/minRate, minus the time already spent waiting for the client.
func (b *rateBody) Read(p []byte) (int, error) {
	allowance := b.grace + time.Duration(float64(b.read)/float64(b.minRate)*float64(time.Second))
	left := allowance - b.waited
	if left <= 0 {
		return 0, fmt.Errorf("%w: %d bytes in %s (minimum %d bytes/s, http.min_body_rate)", errBodyTooSlow, b.read, b.waited.Round(time.Millisecond), b.minRate)
	}
	start := time.Now()
	deadline, ours := start.Add(left), true
	if !b.limit.IsZero() && b.limit.Before(deadline) {
		deadline, ours = b.limit, false
	}
	// The deadline stays after the body ends; that is harmless, because
	// net/http clears it when it starts its background read at EOF, so a
	// handler working on after the body keeps its request context.
	_ = b.rc.SetReadDeadline(deadline) // best effort: an error means the writer cannot set deadlines
	n, err := b.body.Read(p)
	b.waited += time.Since(start)
	b.read += int64(n)
	if ours && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %d bytes in %s (minimum %d bytes/s, http.min_body_rate): %w", errBodyTooSlow, b.read, b.waited.Round(time.Millisecond), b.minRate, err)
	}
	return n, err
}

func (b *rateBody) Close() error { return b.body.Close() }
