package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/spf13/cobra"
)

func init() { register(newFlushCmd) }

// flushAnswer is the answer of POST /api/v1/admin/flush.
type flushAnswer struct {
	Status          string  `json:"status"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// flushHandler serves POST /api/v1/admin/flush: it writes every unflushed
// record into segment files (store.Flush) and answers once they are durable,
// so that a test or an operator can make fresh records final now instead of
// after flush_interval. A failed flush changes nothing (the records stay in
// the WAL and the head) and is answered 503 with its cause.
func flushHandler(flush func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if err := flush(); err != nil {
			httpx.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("flush: %v", err))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, flushAnswer{Status: "flushed", DurationSeconds: time.Since(start).Seconds()})
	})
}

// newFlushCmd is `retentiond flush`. Like purge it asks the running daemon,
// which owns the data directory, rather than touching files itself.
func newFlushCmd() *cobra.Command {
	var c apiClient
	cmd := &cobra.Command{
		Use:   "flush",
		Short: "Write the records the daemon holds in memory into segment files now",
		Long: `Flush asks the running daemon to write every record it has not flushed yet (at most
storage.flush_interval old, or storage.head_max_bytes / 2) into the day's segment files, record the
checkpoint and drop the WAL files that held them. It returns when that is durable. Acknowledged
records are durable before any flush (they are in the fsynced WAL); a flush makes them final files
now, for tests, backups and benchmarks. Closed days are merged and archived afterwards in the
background as usual (docs/storage.md).
Needs an admin token (--token or RETENTIOND_TOKEN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := c.do(http.MethodPost, "/api/v1/admin/flush", nil, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var a flushAnswer
			if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil {
				return fmt.Errorf("decode flush answer: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s in %.3f s\n", a.Status, a.DurationSeconds)
			return nil
		},
	}
	addClientFlags(cmd, &c)
	return cmd
}
