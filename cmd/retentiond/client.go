package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// apiClient is how the command-line tools talk to a running daemon, so that
// every search goes through the daemon's authentication and audit log.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// addClientFlags adds --server and --token to a command that talks to the
// daemon. Their defaults come from RETENTIOND_SERVER and RETENTIOND_TOKEN, so
// a token never has to appear on a command line (and in shell history).
func addClientFlags(cmd *cobra.Command, c *apiClient) {
	cmd.Flags().StringVar(&c.base, "server", cmp.Or(os.Getenv("RETENTIOND_SERVER"), "http://127.0.0.1:8080"),
		"URL of the running daemon (env RETENTIOND_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", "", "API token; prefer the RETENTIOND_TOKEN environment variable")
}

func (c *apiClient) client() *http.Client {
	if c.http == nil {
		// No overall timeout: a search export may stream for a long time. The
		// transport still bounds connection set-up and the wait for headers.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 5 * time.Minute
		c.http = &http.Client{Transport: tr}
	}
	return c.http
}

// do sends a request to path (with query q) and returns the response when its
// status is 2xx; otherwise it returns the daemon's {"error": ...} message.
func (c *apiClient) do(method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := strings.TrimRight(c.base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	token := cmp.Or(c.token, os.Getenv("RETENTIOND_TOKEN"))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("contact daemon at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return nil, fmt.Errorf("daemon answered %s: %s", resp.Status, e.Error)
	}
	return nil, fmt.Errorf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}
