// Package config loads retentiond's configuration: embedded defaults that run
// out of the box, an optional YAML file, and RETENTIOND_* environment
// variables (in rising order of precedence). Parsing is strict, because a
// misspelt key silently falling back to a default could keep personal data
// longer than promised: unknown keys are errors naming the file and line, and
// Validate explains how to fix every bad value.
//
// Viper is used here and nowhere else; the rest of the daemon receives the
// typed Config.
package config

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
)

// Config is the daemon's whole configuration. Field tags name the YAML keys;
// the environment variable of a key is EnvName(key).
type Config struct {
	DataDir   string           `mapstructure:"data_dir" yaml:"data_dir"`
	Retention policy.Retention `mapstructure:"retention" yaml:"retention"`
	Listen    Listen           `mapstructure:"listen" yaml:"listen"`
	Purge     Purge            `mapstructure:"purge" yaml:"purge"`
	Ingest    Ingest           `mapstructure:"ingest" yaml:"ingest"`
	Storage   Storage          `mapstructure:"storage" yaml:"storage"`
	// Encryption is encryption at rest with one key per UTC day.
	Encryption Encryption `mapstructure:"encryption" yaml:"encryption"`
	Search     Search     `mapstructure:"search" yaml:"search"`
	Log        Log        `mapstructure:"log" yaml:"log"`
	HTTP       HTTP       `mapstructure:"http" yaml:"http"`
	TLS        TLS        `mapstructure:"tls" yaml:"tls"`
	Auth       Auth       `mapstructure:"auth" yaml:"auth"`
	Audit      Audit      `mapstructure:"audit" yaml:"audit"`
	Cases      Cases      `mapstructure:"cases" yaml:"cases"`
	// ObjectStorage is the bucket closed days go to (docs/scale-out.md).
	ObjectStorage ObjectStorage `mapstructure:"object_storage" yaml:"object_storage"`
	// Cluster names this node among the nodes sharing the bucket.
	Cluster Cluster `mapstructure:"cluster" yaml:"cluster"`

	// File is the configuration file that was read, or "" when only the
	// embedded defaults (and the environment) were used. It is not a key.
	File string `mapstructure:"-" yaml:"-"`
}

// Listen holds the listener addresses; an empty string disables a listener.
type Listen struct {
	HTTP      string `mapstructure:"http" yaml:"http"`
	SyslogUDP string `mapstructure:"syslog_udp" yaml:"syslog_udp"`
	SyslogTCP string `mapstructure:"syslog_tcp" yaml:"syslog_tcp"`
}

// Purge configures the scheduled destruction of expired days. Schedule is
// kept as written, because the purge scheduler logs it; Validate checks it
// with policy.ParseSchedule, the dialect the scheduler parses it with.
type Purge struct {
	Schedule      string `mapstructure:"schedule" yaml:"schedule"`
	OnStart       bool   `mapstructure:"on_start" yaml:"on_start"`
	MaxDaysPerRun int    `mapstructure:"max_days_per_run" yaml:"max_days_per_run"`
	// ReaderGrace is how long the purge lets a running search finish with
	// a day it destroys before it cancels the search.
	ReaderGrace time.Duration `mapstructure:"reader_grace" yaml:"reader_grace"`
}

// Ingest bounds what clients may send.
type Ingest struct {
	MaxBodyBytes         ByteSize      `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	MaxLineBytes         ByteSize      `mapstructure:"max_line_bytes" yaml:"max_line_bytes"`
	MaxFuture            time.Duration `mapstructure:"max_future" yaml:"max_future"`
	Allow                []string      `mapstructure:"allow" yaml:"allow"`
	SyslogMaxConnections int           `mapstructure:"syslog_max_connections" yaml:"syslog_max_connections"`
	// MaxConcurrentRequests bounds the HTTP ingest requests served at once;
	// 0 means twice GOMAXPROCS (at least 4), ingest's default.
	MaxConcurrentRequests int           `mapstructure:"max_concurrent_requests" yaml:"max_concurrent_requests"`
	QueueTimeout          time.Duration `mapstructure:"queue_timeout" yaml:"queue_timeout"`
	ElasticProductHeader  bool          `mapstructure:"elastic_product_header" yaml:"elastic_product_header"`
}

// Storage tunes the data directory.
type Storage struct {
	HeadMaxBytes    ByteSize      `mapstructure:"head_max_bytes" yaml:"head_max_bytes"`
	FlushInterval   time.Duration `mapstructure:"flush_interval" yaml:"flush_interval"`
	MergeGrace      time.Duration `mapstructure:"merge_grace" yaml:"merge_grace"`
	WALSegmentBytes ByteSize      `mapstructure:"wal_segment_bytes" yaml:"wal_segment_bytes"`
	BlockRows       int           `mapstructure:"block_rows" yaml:"block_rows"`
}

// Search bounds queries.
type Search struct {
	MaxConcurrency int           `mapstructure:"max_concurrency" yaml:"max_concurrency"`
	Timeout        time.Duration `mapstructure:"timeout" yaml:"timeout"`
	DefaultLimit   int           `mapstructure:"default_limit" yaml:"default_limit"`
	// StatsMaxGroups and StatsMaxKeyBytes bound the memory of one stats
	// request (search.Executor.Stats).
	StatsMaxGroups   int      `mapstructure:"stats_max_groups" yaml:"stats_max_groups"`
	StatsMaxKeyBytes ByteSize `mapstructure:"stats_max_key_bytes" yaml:"stats_max_key_bytes"`
	// WriteStallTimeout abandons a response whose client stops reading.
	WriteStallTimeout time.Duration `mapstructure:"write_stall_timeout" yaml:"write_stall_timeout"`
	// RequireCase is search.require_case (internal/cases).
	RequireCase bool `mapstructure:"require_case" yaml:"require_case"`
}

// Cluster names this node and lists the other nodes whose data not yet in
// the bucket a search asks for (docs/scale-out.md, "Fresh data across nodes").
type Cluster struct {
	// Node is this node's name in the bucket's keys and to its peers;
	// empty: the host name.
	Node string `mapstructure:"node" yaml:"node"`
	// Peers are the other nodes' HTTP base URLs (http or https, no user
	// name, query or fragment).
	Peers []string `mapstructure:"peers" yaml:"peers"`
	// Token is the node token: the secret every node of the cluster
	// presents to its peers and accepts from them. It is a secret: never
	// logged, redacted by Redacted.
	Token string `mapstructure:"token" yaml:"token"`
	// PeerTimeout bounds the wait for a peer's first answer line.
	PeerTimeout time.Duration `mapstructure:"peer_timeout" yaml:"peer_timeout"`
}

// ObjectStorage is the S3-compatible bucket closed days are uploaded to and
// read from (docs/scale-out.md). An empty Endpoint keeps everything on
// local disk.
type ObjectStorage struct {
	Endpoint string `mapstructure:"endpoint" yaml:"endpoint"`
	Bucket   string `mapstructure:"bucket" yaml:"bucket"`
	Prefix   string `mapstructure:"prefix" yaml:"prefix"`
	Region   string `mapstructure:"region" yaml:"region"`
	// AccessKeyID and SecretAccessKey sign requests; empty: the AWS_*
	// environment variables. Secrets: redacted by Redacted, never logged.
	AccessKeyID     string `mapstructure:"access_key_id" yaml:"access_key_id"`
	SecretAccessKey string `mapstructure:"secret_access_key" yaml:"secret_access_key"`
	// CAFile is a PEM file of CAs trusted for an https endpoint.
	CAFile string `mapstructure:"ca_file" yaml:"ca_file"`
	// CacheBytes bounds the local disk used for remote data: half for
	// uploaded day files kept as cache entries, half for the ranges
	// searches read from the bucket.
	CacheBytes ByteSize `mapstructure:"cache_bytes" yaml:"cache_bytes"`
	// ListInterval is how often the bucket is listed for other nodes' days.
	ListInterval time.Duration `mapstructure:"list_interval" yaml:"list_interval"`
}

// NodeName is cluster.node, or the host name when it is empty, checked
// with objstore.ValidNode (a host name with other characters must be
// replaced by a configured name).
func (c Cluster) NodeName() (string, error) {
	name := c.Node
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("cluster.node is empty and the host name is unknown: %w", err)
		}
		name = h
	}
	if err := objstore.ValidNode(name); err != nil {
		return "", fmt.Errorf("cluster.node: %w", err)
	}
	return name, nil
}

// Encryption configures encryption at rest: one random data key per UTC
// day, wrapped by the master key, destroyed by the purge with the day
// (docs/security.md).
type Encryption struct {
	Enabled       bool   `mapstructure:"enabled" yaml:"enabled"`
	MasterKeyFile string `mapstructure:"master_key_file" yaml:"master_key_file"`
	KeyDir        string `mapstructure:"key_dir" yaml:"key_dir"`
}

// KeyDir is the directory of the wrapped day keys: encryption.key_dir, or
// <data_dir>/keys.
func (c *Config) KeyDir() string {
	return cmp.Or(c.Encryption.KeyDir, filepath.Join(c.DataDir, "keys"))
}

// Log configures the daemon's own log on stderr (journald captures it).
type Log struct {
	Level  string `mapstructure:"level" yaml:"level"`
	Format string `mapstructure:"format" yaml:"format"`
}

// HTTP holds the HTTP server's timeouts and connection cap.
type HTTP struct {
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout" yaml:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout" yaml:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout" yaml:"shutdown_timeout"`
	MaxConnections    int           `mapstructure:"max_connections" yaml:"max_connections"`
	MinBodyRate       ByteSize      `mapstructure:"min_body_rate" yaml:"min_body_rate"`
}

// TLS enables HTTPS when both files are set.
type TLS struct {
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
}

// Auth lists the API tokens.
type Auth struct {
	Tokens []Token `mapstructure:"tokens" yaml:"tokens"`
}

// Token is one API token. Only the SHA-256 of the token is configured, so the
// configuration file never holds a usable secret.
type Token struct {
	Name   string   `mapstructure:"name" yaml:"name" json:"name"`
	SHA256 string   `mapstructure:"sha256" yaml:"sha256" json:"sha256"`
	Roles  []string `mapstructure:"roles" yaml:"roles" json:"roles"`
}

// Audit configures the search audit log.
type Audit struct {
	Path      string           `mapstructure:"path" yaml:"path"`
	Retention policy.Retention `mapstructure:"retention" yaml:"retention"`
	// CheckpointLines and CheckpointInterval pace the audit witness's
	// signed checkpoints in the daemon's log (internal/audit witness.go).
	CheckpointLines    int           `mapstructure:"checkpoint_lines" yaml:"checkpoint_lines"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval" yaml:"checkpoint_interval"`
}

// Cases bounds the investigations registered in the case registry.
type Cases struct {
	DefaultExpires time.Duration `mapstructure:"default_expires" yaml:"default_expires"`
	MaxExpires     time.Duration `mapstructure:"max_expires" yaml:"max_expires"`
}

// DefaultPaths are the configuration files tried, in order, when no --config
// is given. The relative one lets `retentiond serve` run from a checkout.
var DefaultPaths = []string{"/etc/retentiond/retentiond.yaml", "retentiond.yaml"}

// Default returns the embedded defaults: a daemon that listens only on
// loopback, keeps data in ./data for two calendar years and purges daily.
func Default() *Config {
	return &Config{
		DataDir:   "./data",
		Retention: policy.Retention{Years: 2},
		Listen: Listen{
			HTTP:      "127.0.0.1:8080",
			SyslogUDP: "127.0.0.1:5514",
			SyslogTCP: "127.0.0.1:5514",
		},
		Purge: Purge{Schedule: policy.DefaultSchedule, OnStart: true, ReaderGrace: 30 * time.Second},
		Ingest: Ingest{
			MaxBodyBytes:         64 << 20,
			MaxLineBytes:         64 << 10,
			MaxFuture:            24 * time.Hour,
			Allow:                []string{},
			SyslogMaxConnections: 1024,
			QueueTimeout:         5 * time.Second,
		},
		Storage: Storage{
			HeadMaxBytes:    256 << 20,
			FlushInterval:   5 * time.Minute,
			MergeGrace:      time.Hour,
			WALSegmentBytes: 64 << 20,
			BlockRows:       8192,
		},
		Search: Search{Timeout: 5 * time.Minute, DefaultLimit: 1000, StatsMaxGroups: 100_000, StatsMaxKeyBytes: 64 << 20, WriteStallTimeout: 30 * time.Second, RequireCase: true},
		Log:    Log{Level: "info", Format: "text"},
		HTTP: HTTP{
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       5 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			ShutdownTimeout:   30 * time.Second,
			MaxConnections:    512,
			MinBodyRate:       4 << 10,
		},
		Auth:          Auth{Tokens: []Token{}},
		Audit:         Audit{Retention: policy.Retention{Years: 2}, CheckpointLines: 100, CheckpointInterval: 15 * time.Minute},
		Cases:         Cases{DefaultExpires: 30 * 24 * time.Hour, MaxExpires: 90 * 24 * time.Hour},
		Cluster:       Cluster{Peers: []string{}, PeerTimeout: 10 * time.Second},
		ObjectStorage: ObjectStorage{Region: "us-east-1", CacheBytes: 10 << 30, ListInterval: time.Minute},
	}
}

// Source names where the configuration came from, for log lines and
// `config check`.
func (c *Config) Source() string {
	if c.File == "" {
		return "embedded defaults"
	}
	return c.File
}

// AuditPath is the audit log directory: audit.path, or <data_dir>/audit.
func (c *Config) AuditPath() string {
	return cmp.Or(c.Audit.Path, filepath.Join(c.DataDir, "audit"))
}

// Redacted returns a deep copy with secrets replaced, for `config show` and
// logs. Token hashes are not usable secrets, but they would let an attacker
// test guesses offline, so they are hidden too.
func (c *Config) Redacted() *Config {
	r := *c
	r.Ingest.Allow = append([]string{}, c.Ingest.Allow...)
	r.Cluster.Peers = append([]string{}, c.Cluster.Peers...)
	if r.Cluster.Token != "" {
		r.Cluster.Token = "REDACTED"
	}
	if r.ObjectStorage.AccessKeyID != "" {
		r.ObjectStorage.AccessKeyID = "REDACTED"
	}
	if r.ObjectStorage.SecretAccessKey != "" {
		r.ObjectStorage.SecretAccessKey = "REDACTED"
	}
	r.Auth.Tokens = make([]Token, len(c.Auth.Tokens))
	for i, t := range c.Auth.Tokens {
		r.Auth.Tokens[i] = Token{Name: t.Name, SHA256: "REDACTED", Roles: append([]string{}, t.Roles...)}
	}
	return &r
}

// AllowPrefixes returns ingest.allow parsed. Call it on a validated Config;
// entries that do not parse are skipped (Validate reports them).
func (i Ingest) AllowPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range i.Allow {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			ps = append(ps, p.Masked())
		}
	}
	return ps
}

// Concurrency is the number of parallel search workers: max_concurrency, or
// GOMAXPROCS when it is 0.
func (s Search) Concurrency() int {
	if s.MaxConcurrency > 0 {
		return s.MaxConcurrency
	}
	return runtime.GOMAXPROCS(0)
}

// SlogLevel returns log.level as a slog level (info for unknown values, which
// Validate rejects anyway).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogger builds the daemon's logger writing to w in log.format at
// log.level.
func (l Log) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Hash returns the decoded SHA-256 of a validated token.
func (t Token) Hash() [32]byte {
	h, _ := policy.ParseTokenHash(t.SHA256)
	return h
}

// HasRole reports whether the token carries role.
func (t Token) HasRole(role string) bool {
	for _, r := range t.Roles {
		if r == role {
			return true
		}
	}
	return false
}
