package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
)

// Validate checks every value and returns all problems joined, each a
// *KeyError naming the key and the fix. It does not touch the file system:
// TLS files may exist only inside the service's credential directory
// (LoadCredential=), so `config check` run by an operator could not see them;
// the server reports an unreadable file when it loads it.
func (c *Config) Validate() error {
	var v validator

	v.check(c.DataDir != "", "data_dir", "is empty", `set the data directory, e.g. "/var/lib/retentiond"`)
	v.retention("retention", c.Retention)

	v.addr("listen.http", c.Listen.HTTP, "127.0.0.1:8080")
	v.addr("listen.syslog_udp", c.Listen.SyslogUDP, "127.0.0.1:5514")
	v.addr("listen.syslog_tcp", c.Listen.SyslogTCP, "127.0.0.1:5514")
	if c.Listen.HTTP != "" && c.Listen.HTTP == c.Listen.SyslogTCP {
		v.add("listen.syslog_tcp", fmt.Sprintf("%q is also listen.http (both are TCP)", c.Listen.SyslogTCP),
			"give syslog TCP its own port, e.g. \"127.0.0.1:5514\"")
	}

	if c.Purge.Schedule == "" {
		v.add("purge.schedule", "is empty, so expired days would never be destroyed",
			`set a cron schedule, e.g. "CRON_TZ=UTC 5 0 * * *" (daily at 00:05 UTC)`)
	} else if _, err := policy.ParseSchedule(c.Purge.Schedule); err != nil {
		v.add("purge.schedule", err.Error(), policy.ScheduleHint)
	}
	v.nonNegative("purge.max_days_per_run", c.Purge.MaxDaysPerRun, "0 means no limit")
	v.duration("purge.reader_grace", c.Purge.ReaderGrace, true)

	v.positiveSize("ingest.max_body_bytes", c.Ingest.MaxBodyBytes, "64MiB")
	v.positiveSize("ingest.max_line_bytes", c.Ingest.MaxLineBytes, "64KiB")
	if c.Ingest.MaxLineBytes > 0 && c.Ingest.MaxBodyBytes > 0 && c.Ingest.MaxLineBytes > c.Ingest.MaxBodyBytes {
		v.add("ingest.max_line_bytes", fmt.Sprintf("%s is larger than ingest.max_body_bytes (%s)", c.Ingest.MaxLineBytes, c.Ingest.MaxBodyBytes),
			"make it at most ingest.max_body_bytes")
	}
	v.duration("ingest.max_future", c.Ingest.MaxFuture, false)
	for i, s := range c.Ingest.Allow {
		key := fmt.Sprintf("ingest.allow[%d]", i)
		if _, err := netip.ParsePrefix(strings.TrimSpace(s)); err != nil {
			fix := `write a CIDR such as "10.0.0.0/8" or "2001:db8::/32"`
			if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
				fix = fmt.Sprintf("for a single address write %q", netip.PrefixFrom(a, a.BitLen()))
			}
			v.add(key, fmt.Sprintf("%q is not a CIDR", s), fix)
		}
	}
	v.positive("ingest.syslog_max_connections", c.Ingest.SyslogMaxConnections, "1024")
	v.nonNegative("ingest.max_concurrent_requests", c.Ingest.MaxConcurrentRequests, "0 means twice GOMAXPROCS, at least 4")
	v.duration("ingest.queue_timeout", c.Ingest.QueueTimeout, true)

	v.positiveSize("storage.head_max_bytes", c.Storage.HeadMaxBytes, "256MiB")
	v.duration("storage.flush_interval", c.Storage.FlushInterval, true)
	v.duration("storage.merge_grace", c.Storage.MergeGrace, false)
	v.positiveSize("storage.wal_segment_bytes", c.Storage.WALSegmentBytes, "64MiB")
	v.positive("storage.block_rows", c.Storage.BlockRows, "8192")
	v.check(!c.Encryption.Enabled || c.Encryption.MasterKeyFile != "", "encryption.master_key_file",
		"is empty but encryption.enabled is true", "create a key with `head -c 32 /dev/urandom > master.key` and name it here (see docs/install.md)")
	if c.Storage.BlockRows > 1<<20 {
		v.add("storage.block_rows", fmt.Sprintf("%d is more than 1048576", c.Storage.BlockRows),
			"use a value between 1024 and 65536; 8192 is a good default")
	}

	v.nonNegative("search.max_concurrency", c.Search.MaxConcurrency, "0 means one worker per CPU (GOMAXPROCS)")
	v.duration("search.timeout", c.Search.Timeout, false)
	v.positive("search.default_limit", c.Search.DefaultLimit, "1000")
	v.positive("search.stats_max_groups", c.Search.StatsMaxGroups, "100000")
	if c.Search.StatsMaxKeyBytes < 1<<20 {
		v.add("search.stats_max_key_bytes", fmt.Sprintf("%s is less than 1MiB", c.Search.StatsMaxKeyBytes),
			"use at least 1MiB (a single path may be 64KiB); 64MiB is the default")
	}
	v.duration("search.write_stall_timeout", c.Search.WriteStallTimeout, true)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.add("log.level", fmt.Sprintf("%q is not a log level", c.Log.Level), "write debug, info, warn or error")
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		v.add("log.format", fmt.Sprintf("%q is not a log format", c.Log.Format), "write text or json")
	}

	v.duration("http.read_header_timeout", c.HTTP.ReadHeaderTimeout, false)
	v.duration("http.read_timeout", c.HTTP.ReadTimeout, false)
	v.duration("http.write_timeout", c.HTTP.WriteTimeout, false)
	v.duration("http.idle_timeout", c.HTTP.IdleTimeout, false)
	v.duration("http.shutdown_timeout", c.HTTP.ShutdownTimeout, false)
	v.positive("http.max_connections", c.HTTP.MaxConnections, "512")
	v.nonNegative("http.min_body_rate", int(c.HTTP.MinBodyRate), "bytes per second, e.g. 4KiB; 0 means only http.read_timeout bounds a body")

	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		v.add("tls.key_file", "is empty but tls.cert_file is set", "set tls.key_file to the certificate's private key, or clear tls.cert_file to serve plain HTTP")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		v.add("tls.cert_file", "is empty but tls.key_file is set", "set tls.cert_file to the certificate chain, or clear tls.key_file to serve plain HTTP")
	}

	names := map[string]bool{}
	hashes := map[string]string{}
	for i, t := range c.Auth.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		switch {
		case policy.ValidTokenName(t.Name) != nil:
			v.add(key+".name", fmt.Sprintf("%q is not a token name", t.Name),
				"use "+policy.TokenNameRule+" (it appears in the audit log)")
		case names[t.Name]:
			v.add(key+".name", fmt.Sprintf("%q is used by two tokens", t.Name), "give every token its own name")
		}
		names[t.Name] = true
		if _, err := policy.ParseTokenHash(t.SHA256); err != nil {
			v.add(key+".sha256", fmt.Sprintf("is not %s (got %d characters)", policy.TokenHashRule, len(t.SHA256)),
				"write the SHA-256 of the token, e.g. the first field of `printf %s \"$TOKEN\" | sha256sum`")
		} else if other, dup := hashes[t.SHA256]; dup {
			v.add(key+".sha256", fmt.Sprintf("is the same as token %q's", other), "generate a separate token for each person or shipper")
		} else {
			hashes[t.SHA256] = t.Name
		}
		if len(t.Roles) == 0 {
			v.add(key+".roles", "is empty, so the token could do nothing", "list at least one of: "+policy.RoleNames())
		}
		for _, r := range t.Roles {
			if _, err := policy.ParseRole(r); err != nil {
				v.add(key+".roles", fmt.Sprintf("%q is not a role", r), "use "+policy.RoleNames())
			}
		}
	}

	v.retention("audit.retention", c.Audit.Retention)
	v.nonNegative("audit.checkpoint_lines", c.Audit.CheckpointLines, "no checkpoint by line count")
	v.duration("audit.checkpoint_interval", c.Audit.CheckpointInterval, false)

	v.duration("cases.default_expires", c.Cases.DefaultExpires, true)
	v.duration("cases.max_expires", c.Cases.MaxExpires, true)
	if c.Cases.DefaultExpires > c.Cases.MaxExpires {
		v.add("cases.default_expires", fmt.Sprintf("%s is longer than cases.max_expires (%s)", c.Cases.DefaultExpires, c.Cases.MaxExpires),
			"make it at most cases.max_expires")
	}
	v.cluster(c.Cluster)
	v.objectStorage(c)
	return errors.Join(v.problems...)
}

// MinClusterTokenLength is the shortest node token accepted: the token is
// the whole of a peer's authentication, so it must be a random secret
// (`head -c 32 /dev/urandom | base64`), not a word.
const MinClusterTokenLength = 32

// cluster checks cluster.*: each peer a plain http(s) base URL (no user
// name, which would put a credential where logs and metrics could show it),
// and a node token whenever there are peers.
func (v *validator) cluster(c Cluster) {
	seen := map[string]bool{}
	for i, p := range c.Peers {
		key := fmt.Sprintf("cluster.peers[%d]", i)
		u, err := url.Parse(p)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.add(key, fmt.Sprintf("%q is not an http or https base URL", p), "write the peer's address as http://host:port or https://host:port")
		case u.User != nil:
			v.add(key, "carries a user name or password", "remove it: peers authenticate with cluster.token")
		case u.RawQuery != "" || u.Fragment != "":
			v.add(key, "has a query or fragment", "write only the base URL, e.g. https://node-b:8080")
		case seen[strings.TrimSuffix(p, "/")]:
			v.add(key, "is listed twice", "list every peer once")
		}
		seen[strings.TrimSuffix(p, "/")] = true
	}
	if len(c.Peers) > 0 || c.Token != "" {
		v.check(len(c.Token) >= MinClusterTokenLength, "cluster.token",
			fmt.Sprintf("is %d characters; a node token needs at least %d", len(c.Token), MinClusterTokenLength),
			"generate one with `head -c 32 /dev/urandom | base64` and give every node the same (or set RETENTIOND_CLUSTER_TOKEN)")
	}
	v.duration("cluster.peer_timeout", c.PeerTimeout, true)
}

// objectStorage checks object_storage and cluster.node; with no endpoint
// the rest of the section is not used and not checked.
func (v *validator) objectStorage(c *Config) {
	o := c.ObjectStorage
	v.positiveSize("object_storage.cache_bytes", o.CacheBytes, "10GiB")
	v.duration("object_storage.list_interval", o.ListInterval, true)
	if c.Cluster.Node != "" {
		if err := objstore.ValidNode(c.Cluster.Node); err != nil {
			v.add("cluster.node", err.Error(), "use a unique name of letters, digits, '.', '_' and '-', e.g. \"node-a\"")
		}
	}
	if o.Endpoint == "" {
		return
	}
	if u, err := url.Parse(o.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		v.add("object_storage.endpoint", fmt.Sprintf("%q is not an http(s) URL of a host", o.Endpoint),
			"write scheme and host[:port] without credentials, e.g. \"http://127.0.0.1:8333\"")
	}
	v.check(o.Bucket != "", "object_storage.bucket", "is empty while object_storage.endpoint is set", "name the bucket")
	if c.Cluster.Node == "" {
		if _, err := c.Cluster.NodeName(); err != nil {
			v.add("cluster.node", err.Error()+" (it defaults to the host name)", "set cluster.node to a unique name such as \"node-a\"")
		}
	}
}

type validator struct{ problems []error }

func (v *validator) add(key, problem, fix string) {
	v.problems = append(v.problems, &KeyError{Key: key, Problem: problem, Fix: fix})
}

func (v *validator) check(ok bool, key, problem, fix string) {
	if !ok {
		v.add(key, problem, fix)
	}
}

// retention checks a value the loader parsed (so it is valid) or one set in
// code (which may be zero).
func (v *validator) retention(key string, r policy.Retention) {
	if err := r.Validate(); err != nil {
		v.add(key, err.Error(), policy.RetentionHint)
	}
}

func (v *validator) addr(key, s, example string) {
	if s == "" {
		return // disabled
	}
	fix := fmt.Sprintf("write host:port, e.g. %q, \":%s\" for all interfaces, or \"\" to disable", example, example[strings.LastIndexByte(example, ':')+1:])
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(key, fmt.Sprintf("%q is not host:port (%v)", s, err), fix)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(key, fmt.Sprintf("%q has port %q, not a number 0-65535", s, port), fix)
		return
	}
	if strings.ContainsAny(host, " /") {
		v.add(key, fmt.Sprintf("%q has an invalid host %q", s, host), fix)
	}
}

func (v *validator) duration(key string, d time.Duration, mustBePositive bool) {
	switch {
	case d < 0:
		v.add(key, fmt.Sprintf("%s is negative", d), "use a positive duration such as \"30s\" or \"5m\"")
	case d == 0 && mustBePositive:
		v.add(key, "is 0", "use a positive duration such as \"30s\" or \"5m\"")
	}
}

func (v *validator) positive(key string, n int, example string) {
	if n <= 0 {
		v.add(key, fmt.Sprintf("%d is not positive", n), "use a number above 0, e.g. "+example)
	}
}

func (v *validator) nonNegative(key string, n int, meaning string) {
	if n < 0 {
		v.add(key, fmt.Sprintf("%d is negative", n), "use 0 or more ("+meaning+")")
	}
}

func (v *validator) positiveSize(key string, b ByteSize, example string) {
	if b <= 0 {
		v.add(key, fmt.Sprintf("%d is not a positive size", int64(b)), "use a size such as \""+example+"\"")
	}
}
