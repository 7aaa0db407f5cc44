package main

import (
	"log/slog"
	"reflect"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/config"
)

// reloadableKeys are the configuration keys SIGHUP applies to a running
// daemon. Both live in the authenticator, which swaps them in one step, so
// a request sees either the old or the new lists. Everything else (listen
// addresses, storage, retention, TLS files, timeouts, the log) is wired into
// objects built once at start, and changing it safely takes a restart.
var reloadableKeys = map[string]bool{"auth.tokens": true, "ingest.allow": true}

// authTokens converts the configured tokens for the auth package.
func authTokens(cfg *config.Config) []auth.TokenConfig {
	var tokens []auth.TokenConfig
	for _, t := range cfg.Auth.Tokens {
		tokens = append(tokens, auth.TokenConfig{Name: t.Name, SHA256: t.SHA256, Roles: t.Roles})
	}
	return tokens
}

// reloadConfig re-reads the configuration (same file, same environment) on
// SIGHUP and applies the reloadable keys. Other keys that changed are
// logged by name as ignored until a restart. A file that does not load or
// validate changes nothing and is reported; the daemon keeps running either
// way. The log names tokens but never holds a token or a hash. It returns
// the configuration now in effect, against which the next reload compares.
func reloadConfig(running *config.Config, authn *auth.Authenticator, log *slog.Logger) *config.Config {
	next, err := config.Load(running.File)
	if err != nil {
		log.Error("configuration not reloaded; the running configuration is unchanged", "config", running.Source(), "err", err)
		return running
	}
	ch, err := authn.Reload(authTokens(next), next.Ingest.AllowPrefixes())
	if err != nil {
		log.Error("configuration not reloaded; the running configuration is unchanged", "config", next.Source(), "err", err)
		return running
	}
	var ignored []string
	for _, k := range config.Keys() {
		if !reloadableKeys[k.Name] && !reflect.DeepEqual(k.Value(running).Interface(), k.Value(next).Interface()) {
			ignored = append(ignored, k.Name)
		}
	}
	applied := *running
	applied.Auth.Tokens = next.Auth.Tokens
	applied.Ingest.Allow = next.Ingest.Allow
	if len(ignored) > 0 {
		log.Warn("configuration keys changed but take effect only after a restart; ignored until then", "keys", ignored)
	}
	log.Info("configuration reloaded", "config", next.Source(), "reloadable", "auth.tokens, ingest.allow",
		"tokens", len(next.Auth.Tokens), "tokens_added", ch.Added, "tokens_removed", ch.Removed, "tokens_changed", ch.Changed,
		"ingest_allow_changed", ch.AllowChanged, "ingest_allow_entries", len(next.Ingest.Allow))
	switch {
	case ch.DevMode && !ch.DevModeBefore:
		log.Warn("no API tokens configured any more: development mode, the API answers loopback clients only")
	case !ch.DevMode && ch.DevModeBefore:
		log.Info("API tokens configured: development mode ended, every API call needs a token")
	}
	return &applied
}
