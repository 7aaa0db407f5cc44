package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// keyDocs explains every section and key. config.example.yaml and
// docs/configuration.md are generated from it together with Default(), and
// tests fail when a key has no entry or a generated file is stale, so the
// documentation cannot drift from the code.
var keyDocs = map[string]string{ //nolint:gosec // G101: descriptions of the token and key settings, no credential
	"data_dir": "Directory holding the WAL, the day segments and (by default) the audit log. Under the systemd unit use /var/lib/retentiond (its StateDirectory).",
	"retention": "How long records are kept: whole calendar years (\"2y\") or days (\"730d\"). " +
		"A UTC day is destroyed once its last record is older than the retention; records already older are rejected at ingest.",

	"listen":            "Listener addresses as host:port. An empty string disables that listener. Ports below 1024 need CAP_NET_BIND_SERVICE (see docs/install.md).",
	"listen.http":       "HTTP API: ingest, search, /metrics, /healthz, /readyz.",
	"listen.syslog_udp": "Syslog over UDP (RFC 3164 or 5424; one message per datagram).",
	"listen.syslog_tcp": "Syslog over TCP (octet-counted or newline-framed, detected per connection).",

	"purge":                  "Scheduled destruction of expired days.",
	"purge.schedule":         "Cron schedule: five fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily, with an optional CRON_TZ= prefix.",
	"purge.on_start":         "Also purge once at start-up, to catch up after downtime.",
	"purge.max_days_per_run": "Refuse to destroy more than this many days in one scheduled run (a guard against a wrong clock); 0 means no limit.",
	"purge.reader_grace": "How long the purge of a day waits for running searches that read it. After it, it cancels them (their answer ends with an error saying the day was destroyed) " +
		"and destroys the day after at most one more grace, so no search, not even one whose client stopped reading, keeps an expired day.",

	"ingest":                "Limits on what clients may send.",
	"ingest.max_body_bytes": "Largest HTTP ingest request body, after decompression (413 above it).",
	"ingest.max_line_bytes": "Longest single line or syslog message; longer ones are rejected.",
	"ingest.max_future":     "Records timestamped further than this in the future are rejected.",
	"ingest.allow": "CIDRs that may ingest over HTTP without a token and may send syslog, e.g. [\"10.0.0.0/8\", \"2001:db8::/32\"]. " +
		"Once auth.tokens has an entry, HTTP ingest without a token is accepted only from these networks (loopback only if listed); " +
		"empty: every HTTP ingest needs a token with the ingest role. Syslog: empty means loopback only; when set, syslog from other addresses is dropped. " +
		"Reloaded on SIGHUP. In the environment: comma-separated.",
	"ingest.elastic_product_header": "Send \"X-Elastic-Product: Elasticsearch\" from the Elasticsearch-compatible bulk API. Logstash's elasticsearch output and the official Elastic clients " +
		"refuse to work without it; Filebeat, Vector and Fluent Bit do not need it. Off by default: the header is Elastic's product identity, and sending it " +
		"is the operator's decision (docs/shipping.md).",
	"ingest.syslog_max_connections": "Maximum concurrent syslog TCP connections. At the cap, the connection that has sent nothing for longest " +
		"(at least 1s, waiting for its next message) is closed to make room; when every connection is busy the new one is closed at once. " +
		"Both are counted (retentiond_ingest_syslog_tcp_connections_evicted_total, _refused_total). " +
		"Lowered at start-up, with a warning, if the listeners' caps would take more than half of the open-file limit (see http.max_connections).",
	"ingest.max_concurrent_requests": "HTTP ingest requests served at once; 0 means twice the number of CPUs (GOMAXPROCS), at least 4. " +
		"Each request is read, parsed and stored in chunks of about 1 MiB, with head memory reserved for each chunk before it is parsed (see docs/storage.md).",
	"ingest.queue_timeout": "How long an HTTP ingest request waits for its turn, and for head memory for its first chunk, before it is answered 429 with nothing stored.",

	"storage":                   "Tuning of the data directory.",
	"storage.head_max_bytes":    "Bound on the memory of records not yet flushed to part files; a flush starts at half of it, and ingest answers 429 (retry later) rather than exceed it.",
	"storage.flush_interval":    "Flush the in-memory head to part files at least this often.",
	"storage.merge_grace":       "Wait this long after a UTC day ends (for late records) before merging its parts into one segment.",
	"storage.wal_segment_bytes": "Size at which the write-ahead log starts a new file.",
	"storage.block_rows":        "Rows per segment block, the unit of search pruning and decompression.",

	"encryption": "Encryption at rest with one key per UTC day (crypto-shredding, docs/security.md). The purge destroys a day's key with its files, " +
		"so every other copy of the day (a backup, an object-store version, a disk remnant) becomes unreadable.",
	"encryption.enabled": "Seal every segment block and WAL frame written from now on under its day's key (AES-256-GCM). " +
		"Files written before stay readable; turning it off again needs the keys for as long as sealed files remain.",
	"encryption.master_key_file": "File holding the 32-byte master key that wraps the day keys (`head -c 32 /dev/urandom > master.key`), " +
		"meant for a systemd credential (LoadCredential=master.key:/etc/retentiond/master.key, see docs/install.md): " +
		"a relative path is looked up in $CREDENTIALS_DIRECTORY when systemd sets it. Keep it out of the data directory and its backups. " +
		"Rotate with `retentiond keys rotate-master`.",
	"encryption.key_dir": "Directory of the wrapped day keys; empty means <data_dir>/keys.",

	"search":                 "Limits on queries.",
	"search.max_concurrency": "Parallel workers per search; 0 means one per CPU (GOMAXPROCS).",
	"search.timeout":         "A search running longer than this is cancelled; 0 means no limit.",
	"search.default_limit":   "Rows returned when a search gives no limit.",
	"search.stats_max_groups": "Distinct values one stats request counts exactly; beyond it the answer is approximate " +
		"(a Space-Saving summary of this many values, each count with its error bound) and says so. Hour and day are always exact.",
	"search.stats_max_key_bytes": "Bytes of distinct values one stats request holds (long paths count more); beyond it the answer is approximate as above.",
	"search.write_stall_timeout": "A search, count or stats response whose client accepts no data for this long (it stopped reading) is abandoned and its snapshot released. " +
		"A slow client that keeps reading is never cut off.",
	"search.require_case": "Every search, count, stats or export must name a case of the case registry that a second admin approved (or an admin approved alone in an emergency) " +
		"and that is neither closed nor expired, and stay inside its time range and scope; otherwise 403 with the reason (docs/security.md). " +
		"Applies once auth.tokens has an entry: in development mode (no tokens) a case id not in the registry is accepted as free text, as the daemon says at start-up. " +
		"A registered case is enforced in every mode. false turns the requirement off (warned about at start-up).",

	"log":        "The daemon's own log, written to stderr (journald keeps it). It never contains record contents.",
	"log.level":  "debug, info, warn or error.",
	"log.format": "text (logfmt-style) or json.",

	"http":                     "HTTP server timeouts (0 means none) and connection cap.",
	"http.read_header_timeout": "Time allowed to send the request headers (protects against slow clients).",
	"http.read_timeout":        "Time allowed to read a whole request, including an ingest body.",
	"http.write_timeout":       "Time allowed to write a response; 0 lets large exports stream as long as they need. Search, count and stats responses do not use it: each of their writes gets search.write_stall_timeout instead.",
	"http.idle_timeout":        "How long an idle keep-alive connection stays open.",
	"http.shutdown_timeout":    "On SIGTERM, how long running requests may finish before they are cut.",
	"http.max_connections": "Maximum concurrent HTTP connections (TLS included), so that a flood of idle or slow clients cannot exhaust the file descriptors the store needs. " +
		"At the cap, the connection idle longest (a keep-alive between requests, or one that has not sent its request yet, silent for at least 1s) is closed to make room; " +
		"when every connection is busy the new one is closed at once. Both are counted (retentiond_http_connections_evicted_total, _refused_total). " +
		"At start-up, if http.max_connections plus ingest.syslog_max_connections exceed half of the open-file limit (RLIMIT_NOFILE: 65536 under the systemd unit; " +
		"often 1024 soft, raised by the daemon to the hard limit, when run by hand), both are lowered in proportion, with a warning.",
	"http.min_body_rate": "Slowest a request body may arrive, in bytes per second, averaged over the time the server waits for it, after a grace of http.read_header_timeout; " +
		"a slower body is cut (so a client trickling bytes cannot hold a connection for all of http.read_timeout). Pauses of the server itself (store back-pressure) do not count. " +
		"0 means only http.read_timeout bounds a body.",

	"tls":           "Serve the HTTP API over HTTPS when both files are set.",
	"tls.cert_file": "PEM certificate chain.",
	"tls.key_file":  "PEM private key (under systemd, pass it with LoadCredential=; see docs/install.md).",

	"auth": "API tokens.",
	"auth.tokens": "Tokens as a list of {name, sha256, roles}. sha256 is the SHA-256 (64 lower-case hex digits) of the token, so the file holds no usable secret: " +
		"printf %s \"$TOKEN\" | sha256sum. roles: search, ingest, admin. In the environment: a JSON list, e.g. " +
		`[{"name":"alice","sha256":"…","roles":["search"]}]. Reloaded on SIGHUP (systemctl reload retentiond).`,

	"audit":                     "The tamper-evident log of every search.",
	"audit.path":                "Audit log directory; empty means <data_dir>/audit.",
	"audit.retention":           "How long audit entries are kept, in the same form as retention. Closed and expired cases leave the case registry once their end is older than this; signed purge and erasure reports (<data_dir>/reports) are kept as long.",
	"audit.checkpoint_lines":    "The audit witness: write a signed checkpoint of the audit chain's head (seq, hash, time) to the daemon's own log after every this many audit lines; 0 disables the count. `retentiond audit verify --checkpoints` checks the chain against them (docs/security.md).",
	"audit.checkpoint_interval": "Also write a checkpoint this often, whether or not lines were added (and always at start-up and shutdown); 0 disables the timer.",

	"object_storage": "An S3-compatible bucket (AWS S3, Ceph RGW, SeaweedFS, Garage, MinIO) shared by every node: closed days are uploaded to it after storage.merge_grace, " +
		"and every node searches every node's days in it (docs/scale-out.md). Empty endpoint: local disk only.",
	"object_storage.endpoint": "The store's URL, scheme and host[:port] (e.g. http://127.0.0.1:8333); requests are path-style. Empty: local disk only (no upload, no listing).",
	"object_storage.bucket":   "The bucket; it must exist. Unversioned, or the purge cannot prove a day destroyed (docs/scale-out.md).",
	"object_storage.prefix":   "Put before every key (e.g. \"retentiond/\"), to share a bucket with other data.",
	"object_storage.region":   "The signing region.",
	"object_storage.access_key_id": "Access key; empty: AWS_ACCESS_KEY_ID from the environment (with AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN). " +
		"Never logged; config show prints REDACTED.",
	"object_storage.secret_access_key": "Secret key; empty: AWS_SECRET_ACCESS_KEY. Never logged; config show prints REDACTED. Prefer the environment or a systemd credential to the file.",
	"object_storage.ca_file":           "PEM file of CA certificates trusted for an https endpoint besides the system's (a private CA of an on-premises store).",
	"object_storage.cache_bytes": "Local disk for data held in the bucket: half keeps uploaded day files (least recently read evicted beyond it, then read from the bucket), " +
		"half keeps the footers, index pages and blocks searches fetched by range GETs. Days not yet uploaded are never evicted and do not count.",
	"object_storage.list_interval": "How often the bucket is listed to learn the days other nodes uploaded (and at start-up, in the background).",

	"cluster.node": "Unique node name, the path element of this node's objects (days/<day>/<node>/...): letters, digits, '.', '_', '-', at most 64 bytes. Empty: the host name. Never reuse a name on a new data directory while the bucket holds that node's days.",

	"cases":                 "The case registry: investigations under which searches may run (retentiond case; docs/security.md).",
	"cases.default_expires": "How long after it is opened a case expires when retentiond case open gives no --expires.",
	"cases.max_expires":     "The longest --expires a case may be opened with; an investigation that needs longer is opened again and approved again.",

	"cluster": "This node and the other nodes of a cluster sharing one bucket: a search asks each for its data not yet uploaded and merges the answers in time order (docs/scale-out.md).",
	"cluster.peers": "The other nodes' HTTP base URLs (http://host:port or https://host:port, no user name). A peer that does not answer makes an answer partial, and the answer names it. " +
		"In the environment: comma-separated.",
	"cluster.token": "The node token every node presents to its peers and accepts from them (the same on every node; at least 32 characters, e.g. head -c 32 /dev/urandom | base64). " +
		"Required when cluster.peers is set. A secret: better set as RETENTIOND_CLUSTER_TOKEN than in the file; never logged.",
	"cluster.peer_timeout": "How long a search waits for a peer's first answer line; a peer slower than this is left out and named in the partial answer.",
}

// exampleHeader opens config.example.yaml.
const exampleHeader = `# retentiond configuration: every key with its default value.
#
# GENERATED from internal/config (keyDocs and Default()); edit those and run
#   go test ./internal/config -run TestGeneratedDocs -update
#
# retentiond reads --config FILE, else /etc/retentiond/retentiond.yaml, else
# ./retentiond.yaml; with none it runs on these defaults. Every key can also be
# set as RETENTIOND_<KEY> with dots as underscores (RETENTIOND_PURGE_SCHEDULE),
# which overrides the file. Unknown keys are errors.
#
# Sizes: "64MiB", "512KiB", "1GiB" or plain bytes. Durations: "90s", "5m", "24h".
# Check a file with: retentiond config check --config FILE
`

// exampleYAML generates config.example.yaml.
func exampleYAML() ([]byte, error) {
	n := encodeNode(reflect.ValueOf(*Default()), "", func(key string) string {
		doc := keyDocs[key]
		if !isSectionKey(key) {
			doc += " Env: " + EnvName(key) + "."
		}
		return wrap(doc, 76)
	})
	body, err := renderYAML(n)
	if err != nil {
		return nil, err
	}
	// A blank line before each top-level key makes the sections readable.
	lines := strings.Split(string(body), "\n")
	var out []string
	for i, l := range lines {
		if i > 0 && strings.HasPrefix(l, "# ") && !strings.HasPrefix(lines[i-1], "#") {
			out = append(out, "")
		}
		out = append(out, l)
	}
	return []byte(exampleHeader + "\n" + strings.Join(out, "\n")), nil
}

// configurationMD generates docs/configuration.md.
func configurationMD() string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- GENERATED from internal/config (keyDocs and Default()); edit those and run
     go test ./internal/config -run TestGeneratedDocs -update -->

retentiond reads, in rising order of precedence:

1. the embedded defaults (below), which run out of the box;
2. a YAML file: ` + "`--config FILE`" + `, else ` + "`/etc/retentiond/retentiond.yaml`" + `, else ` + "`./retentiond.yaml`" + `
   (with neither, the daemon logs that it runs on the embedded defaults);
3. environment variables ` + "`RETENTIOND_<KEY>`" + `, the key upper-cased with dots as underscores.

Parsing is strict: an unknown key in the file (reported with its line) or an unknown ` + "`RETENTIOND_*`" + `
variable is an error, because a misspelt key silently falling back to a default could keep data longer than
promised. Only ` + "`RETENTIOND_SERVER`" + ` and ` + "`RETENTIOND_TOKEN`" + `, which the command-line client uses, are exempt.

- ` + "`retentiond config check [--config FILE]`" + ` validates and prints every problem with its fix (exit 1).
- ` + "`retentiond config show [--config FILE]`" + ` prints the effective configuration as YAML, token hashes redacted.

Value forms: sizes as ` + "`64MiB`, `512KiB`, `1GiB`" + ` or plain bytes (binary units only; ` + "`64MB`" + ` is rejected as
ambiguous); durations as Go durations (` + "`90s`, `5m`, `1h30m`" + `); retention as ` + "`2y`" + ` (calendar years) or ` + "`730d`" + `.
In the environment, ` + "`ingest.allow`" + ` is comma-separated and ` + "`auth.tokens`" + ` is a JSON list. An empty variable
sets an empty value (` + "`RETENTIOND_LISTEN_SYSLOG_UDP=`" + ` disables that listener).

[config.example.yaml](../config.example.yaml) holds the same keys with comments.
`)
	def := Default()
	section, first := "", true
	for _, k := range Keys() {
		sec, _, nested := strings.Cut(k.Name, ".")
		if !nested {
			sec = ""
		}
		if first || sec != section {
			section, first = sec, false
			title := "Top level"
			if sec != "" {
				title = "`" + sec + "`"
			}
			fmt.Fprintf(&b, "\n## %s\n\n", title)
			if sec != "" {
				fmt.Fprintf(&b, "%s\n\n", keyDocs[sec])
			}
			b.WriteString("| key | default | environment variable | meaning |\n|---|---|---|---|\n")
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", k.Name, mdDefault(k, def), k.Env,
			strings.ReplaceAll(keyDocs[k.Name], "|", `\|`))
	}
	return b.String()
}

func mdDefault(k Key, def *Config) string {
	n := encodeNode(k.Value(def), "", nil)
	switch {
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		return "`[]`"
	case n.Value == "":
		return "`\"\"`"
	}
	return "`" + n.Value + "`"
}

func isSectionKey(key string) bool {
	for _, k := range Keys() {
		if strings.HasPrefix(k.Name, key+".") {
			return true
		}
	}
	return false
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}
