package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/retentiond/retentiond/internal/record"
)

// retryAfter is a back-pressure answer: send the same batch again later.
type retryAfter struct {
	wait time.Duration
	why  string
}

func (e *retryAfter) Error() string             { return e.why }
func (e *retryAfter) RetryAfter() time.Duration { return e.wait }

// StoreSink writes into a store opened directly (a stopped daemon's data
// directory) and retries its back-pressure sooner than the store asks a
// daemon's clients to: nothing but this import competes for the store.
type StoreSink struct {
	// Store is the *store.Store. Its busy error (store.ErrBusy) is known by
	// its RetryAfter method, so this package does not import the storage
	// engine.
	Store Sink
}

// Append stores recs; a busy error (a RetryableError) is retried after
// 200 ms.
func (s StoreSink) Append(ctx context.Context, recs []record.Record) error {
	err := s.Store.Append(ctx, recs)
	var busy RetryableError
	if errors.As(err, &busy) {
		return &retryAfter{wait: 200 * time.Millisecond, why: err.Error()}
	}
	return err
}

// APISink posts batches to a running daemon's POST /api/v1/ingest as
// gzip-compressed NDJSON, and reads which records it rejected.
type APISink struct {
	// Server is the daemon's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is sent as a bearer token when not empty.
	Token string
	// Client is the HTTP client; nil uses one without an overall timeout.
	Client *http.Client
}

// ingestAnswer is the daemon's answer to an ingest request.
type ingestAnswer struct {
	Accepted *int64 `json:"accepted"`
	Rejected int64  `json:"rejected"`
	Errors   []struct {
		Line  int    `json:"line"`
		Error string `json:"error"`
	} `json:"errors"`
	Error string `json:"error"`
}

// ndjsonRow is the canonical record shape of the HTTP API.
type ndjsonRow struct {
	Time      string `json:"time"`
	Domain    string `json:"domain"`
	Path      string `json:"path"`
	UserAgent string `json:"user_agent"`
	IP        string `json:"ip"`
}

// Append sends recs and fails if the daemon rejected any of them.
func (s *APISink) Append(ctx context.Context, recs []record.Record) error {
	rejs, err := s.AppendPartial(ctx, recs)
	if err != nil {
		return err
	}
	if len(rejs) > 0 {
		return fmt.Errorf("daemon rejected %d of %d records, first: %s", len(rejs), len(recs), rejs[0].Err)
	}
	return nil
}

// AppendPartial sends recs as one request. The daemon answers only after
// every accepted record is fsynced, so a nil error acknowledges the batch;
// the returned rejections name records by their index in recs.
func (s *APISink) AppendPartial(ctx context.Context, recs []record.Record) ([]Rejection, error) {
	body, err := encodeBatch(recs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.Server, "/")+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if isConnRefused(err) {
			// Nothing reached the daemon (it may be restarting): safe to retry.
			return nil, &retryAfter{wait: time.Second, why: err.Error()}
		}
		return nil, fmt.Errorf("post batch: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var ans ingestAnswer
	jsonErr := json.Unmarshal(raw, &ans)

	switch resp.StatusCode {
	case http.StatusOK, http.StatusBadRequest:
		if jsonErr != nil || ans.Accepted == nil {
			return nil, fmt.Errorf("daemon answered %s: %s", resp.Status, msg(ans.Error, raw))
		}
		if *ans.Accepted+ans.Rejected != int64(len(recs)) {
			return nil, fmt.Errorf("daemon answered %d accepted + %d rejected for %d records sent", *ans.Accepted, ans.Rejected, len(recs))
		}
		rejs := make([]Rejection, 0, ans.Rejected)
		for _, e := range ans.Errors {
			rejs = append(rejs, Rejection{Index: e.Line - 1, Err: e.Error})
		}
		// The daemon may list fewer errors than it rejected; the rest
		// still count as rejected.
		for i := int64(len(rejs)); i < ans.Rejected; i++ {
			rejs = append(rejs, Rejection{Index: -1, Err: "rejected by the daemon (reason not listed in its answer)"})
		}
		return rejs, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return nil, &retryAfter{wait: parseRetryAfter(resp.Header.Get("Retry-After")), why: "daemon busy: " + resp.Status}
	case http.StatusRequestEntityTooLarge:
		return nil, fmt.Errorf("daemon answered %s: the batch of %d records is over its size limit; use a smaller --batch-size", resp.Status, len(recs))
	default:
		return nil, fmt.Errorf("daemon answered %s: %s", resp.Status, msg(ans.Error, raw))
	}
}

func msg(e string, raw []byte) string {
	if e != "" {
		return e
	}
	return record.Shorten(strings.TrimSpace(string(raw)))
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// parseRetryAfter reads delay-seconds or an HTTP date; default one second.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return time.Second
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return time.Second
}

func encodeBatch(recs []record.Record) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for i := range recs {
		r := &recs[i]
		row := ndjsonRow{r.Time.UTC().Format(time.RFC3339Nano), r.Domain, r.Path, r.UserAgent, r.IP.String()}
		if err := enc.Encode(&row); err != nil {
			return nil, fmt.Errorf("encode record: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}
