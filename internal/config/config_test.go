package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/testkit"
	"go.yaml.in/yaml/v3"
)

const (
	examplePath = "../../config.example.yaml"
	docsPath    = "../../docs/configuration.md"
)

// withDefaultPaths points the default file locations at paths for one test.
func withDefaultPaths(t *testing.T, paths ...string) {
	t.Helper()
	old := DefaultPaths
	DefaultPaths = paths
	t.Cleanup(func() { DefaultPaths = old })
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("embedded defaults do not validate: %v", err)
	}
}

func TestLoadLocations(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	second := writeFile(t, dir, "second.yaml", "retention: 400d\n")

	t.Run("no file: embedded defaults", func(t *testing.T) {
		withDefaultPaths(t, missing, filepath.Join(dir, "also-missing.yaml"))
		c, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if c.File != "" || c.Source() != "embedded defaults" {
			t.Errorf("File = %q, Source = %q; want embedded defaults", c.File, c.Source())
		}
		want := Default()
		if !reflect.DeepEqual(c, want) {
			t.Errorf("got %+v, want defaults %+v", c, want)
		}
	})
	t.Run("first existing default path wins", func(t *testing.T) {
		withDefaultPaths(t, missing, second)
		c, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if c.File != second || c.Retention != (policy.Retention{Days: 400}) {
			t.Errorf("File = %q, Retention = %s; want %q, 400d", c.File, c.Retention, second)
		}
	})
	t.Run("unreadable default path is an error, not a fall-back", func(t *testing.T) {
		withDefaultPaths(t, dir, second) // a directory cannot be read as a file
		_, err := Load("")
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err = %v; want a read error naming %s", err, dir)
		}
	})
	t.Run("explicit missing file is an error", func(t *testing.T) {
		_, err := Load(missing)
		if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
			t.Fatalf("err = %v; want an error naming the file", err)
		}
	})
	t.Run("empty file means defaults", func(t *testing.T) {
		c, err := Load(writeFile(t, t.TempDir(), "empty.yaml", "# nothing here\n"))
		if err != nil {
			t.Fatal(err)
		}
		c.File = ""
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("empty file did not give the defaults: %+v", c)
		}
	})
	t.Run("partial section keeps the other defaults", func(t *testing.T) {
		c, err := Load(writeFile(t, t.TempDir(), "p.yaml", "listen:\n  syslog_udp: \"\"\npurge:\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Listen.SyslogUDP != "" || c.Listen.HTTP != "127.0.0.1:8080" || c.Purge.Schedule != Default().Purge.Schedule {
			t.Errorf("listen = %+v, purge = %+v", c.Listen, c.Purge)
		}
	})
}

// envSamples holds a valid non-default value for every string key, whose
// valid forms depend on the key. A new string key without a sample fails
// TestEnvEveryKey, so it cannot be left untested.
var envSamples = map[string]string{
	"data_dir":                         "/srv/retentiond",
	"listen.http":                      "[::1]:9090",
	"encryption.master_key_file":       "/run/credentials/retentiond.service/master.key",
	"encryption.key_dir":               "/var/lib/retentiond-keys",
	"listen.syslog_udp":                "",
	"listen.syslog_tcp":                "0.0.0.0:6514",
	"purge.schedule":                   "CRON_TZ=Europe/Amsterdam 30 3 * * *",
	"log.level":                        "debug",
	"log.format":                       "json",
	"tls.cert_file":                    "", // set to a real file by the test
	"tls.key_file":                     "",
	"audit.path":                       "/srv/audit",
	"object_storage.endpoint":          "http://127.0.0.1:8333",
	"object_storage.bucket":            "retentiond",
	"object_storage.prefix":            "cluster-1/",
	"object_storage.region":            "eu-west-1",
	"object_storage.access_key_id":     "AKIAEXAMPLE",
	"object_storage.secret_access_key": "secret-example",
	"object_storage.ca_file":           "/etc/retentiond/ca.pem",
	"cluster.node":                     "node-a",
	"cluster.token":                    "node-token-of-at-least-32-characters-0123",
}

// TestEnvEveryKey sets RETENTIOND_* for every key of the Config struct (the
// list comes from reflection) and checks that each value reaches the loaded
// configuration. It guards against viper's AutomaticEnv not reaching
// Unmarshal for keys without a default.
func TestEnvEveryKey(t *testing.T) {
	dir := t.TempDir()
	cert := writeFile(t, dir, "cert.pem", "cert")
	key := writeFile(t, dir, "key.pem", "key")
	// A file sets some keys too, so the test also shows env beats file.
	file := writeFile(t, dir, "c.yaml", "retention: 5y\nlog:\n  level: error\n")

	def := Default()
	want := map[string]any{}
	for _, k := range Keys() {
		var env string
		var val any
		cur := k.Value(def).Interface()
		switch {
		case k.Type == durationType:
			d := cur.(time.Duration) + 90*time.Second
			env, val = d.String(), d
		case k.Type == byteSizeType:
			b := cur.(ByteSize) + 1<<20
			env, val = b.String(), b
		case k.Type == retentionType:
			r := policy.Retention{Days: 400 + len(want)} // a different value per key
			env, val = r.String(), r
		case k.Type == stringsType && k.Name == "cluster.peers":
			env, val = "http://node-b:8080, https://[2001:db8::2]:8443", []string{"http://node-b:8080", "https://[2001:db8::2]:8443"}
		case k.Type == stringsType:
			env, val = "10.0.0.0/8, 2001:db8::/32", []string{"10.0.0.0/8", "2001:db8::/32"}
		case k.Type == tokensType:
			toks := []Token{{Name: "alice", SHA256: strings.Repeat("ab", 32), Roles: []string{"search", "admin"}}}
			b, _ := json.Marshal(toks)
			env, val = string(b), toks
		case k.Type.Kind() == reflect.Bool:
			env, val = "false", !cur.(bool)
			if !cur.(bool) {
				env = "true"
			}
		case k.Type.Kind() == reflect.Int:
			n := cur.(int) + 7
			env, val = strings.TrimSpace(strings.Repeat(" ", 1)+itoa(n)), n
		case k.Type.Kind() == reflect.String:
			s, ok := envSamples[k.Name]
			if !ok {
				t.Fatalf("key %s has no entry in envSamples; add a valid non-default value", k.Name)
			}
			switch k.Name {
			case "tls.cert_file":
				s = cert
			case "tls.key_file":
				s = key
			}
			env, val = s, s
		default:
			t.Fatalf("key %s has type %s, which this test does not know; extend it", k.Name, k.Type)
		}
		if reflect.DeepEqual(val, cur) {
			t.Fatalf("sample for %s equals its default %v; the test could not see it", k.Name, cur)
		}
		t.Setenv(k.Env, env)
		want[k.Name] = val
	}

	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		t.Run(k.Env, func(t *testing.T) {
			if got := k.Value(c).Interface(); !reflect.DeepEqual(got, want[k.Name]) {
				t.Errorf("%s: got %#v, want %#v", k.Name, got, want[k.Name])
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestEnvNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		if other, dup := seen[k.Env]; dup {
			t.Errorf("%s and %s both map to %s", k.Name, other, k.Env)
		}
		seen[k.Env] = k.Name
	}
	if len(seen) < 30 {
		t.Errorf("only %d keys found by reflection; the walk is broken", len(seen))
	}
}

// TestBadConfigs checks that every kind of mistake yields a message that
// names the key and says how to fix it.
func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "key.pem", "key")
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantKey string // must appear in the message
		wantFix string // must appear in the message
	}{
		{"unknown key", "listen:\n  htp: 1.2.3.4:80\n", nil, "listen.htp", "did you mean http?"},
		{"unknown top-level key", "retension: 2y\n", nil, "retension", "did you mean retention?"},
		{"unknown key far from any", "colour: blue\n", nil, "colour", "known keys: data_dir, retention"},
		{"unknown token field", "auth:\n  tokens:\n    - name: a\n      sha: x\n", nil, "auth.tokens[0].sha", "did you mean sha256?"},
		{"section given a value", "listen: 127.0.0.1:8080\n", nil, "listen", "indent its keys below it"},
		{"bad retention", "retention: 2years\n", nil, "retention", `e.g. "2y" (two calendar years) or "730d"`},
		{"numeric retention", "retention: 730\n", nil, "retention", `"730d"`},
		{"bad audit retention", "audit:\n  retention: 0d\n", nil, "audit.retention", `"730d"`},
		{"bad cron schedule", "purge:\n  schedule: \"5 0 * *\"\n", nil, "purge.schedule", "CRON_TZ=UTC 5 0 * * *"},
		{"bad cron time zone", "purge:\n  schedule: \"CRON_TZ=Mars/Olympus 5 0 * * *\"\n", nil, "purge.schedule", "minute hour"},
		{"empty schedule", "purge:\n  schedule: \"\"\n", nil, "purge.schedule", "set a cron schedule"},
		{"negative max days", "purge:\n  max_days_per_run: -1\n", nil, "purge.max_days_per_run", "0 means no limit"},
		{"bad listen address", "listen:\n  http: \"8080\"\n", nil, "listen.http", `":8080" for all interfaces`},
		{"bad listen port", "listen:\n  syslog_udp: \"127.0.0.1:http-ish\"\n", nil, "listen.syslog_udp", "write host:port"},
		{"same TCP address twice", "listen:\n  syslog_tcp: 127.0.0.1:8080\n", nil, "listen.syslog_tcp", "its own port"},
		{"bad byte size", "ingest:\n  max_body_bytes: 64MB\n", nil, "max_body_bytes", "binary units"},
		{"bad byte size text", "storage:\n  head_max_bytes: lots\n", nil, "head_max_bytes", `"64MiB"`},
		{"zero byte size", "storage:\n  wal_segment_bytes: 0\n", nil, "storage.wal_segment_bytes", `"64MiB"`},
		{"line larger than body", "ingest:\n  max_line_bytes: 1GiB\n", nil, "ingest.max_line_bytes", "at most ingest.max_body_bytes"},
		{"negative duration", "http:\n  read_timeout: -5s\n", nil, "http.read_timeout", "positive duration"},
		{"zero flush interval", "storage:\n  flush_interval: 0s\n", nil, "storage.flush_interval", "positive duration"},
		{"duration without unit", "search:\n  timeout: 300\n", nil, "search.timeout", `"5m"`},
		{"bad duration", "ingest:\n  max_future: one day\n", nil, "max_future", "Go duration"},
		{"bad log level", "log:\n  level: verbose\n", nil, "log.level", "debug, info, warn or error"},
		{"bad log format", "log:\n  format: logfmt\n", nil, "log.format", "text or json"},
		{"tls cert without key", "tls:\n  cert_file: /etc/ssl/x.pem\n", nil, "tls.key_file", "set tls.key_file"},
		{"tls key without cert", "tls:\n  key_file: " + keyFile + "\n", nil, "tls.cert_file", "set tls.cert_file"},
		{"bad CIDR", "ingest:\n  allow: [10.0.0.0/33]\n", nil, "ingest.allow[0]", `"10.0.0.0/8"`},
		{"peer not a URL", "cluster:\n  peers: [node-b:8080]\n  token: " + strings.Repeat("t", 32) + "\n", nil, "cluster.peers[0]", "http://host:port"},
		{"peer with password", "cluster:\n  peers: [\"http://u:p@node-b:8080\"]\n  token: " + strings.Repeat("t", 32) + "\n", nil, "cluster.peers[0]", "cluster.token"},
		{"peer twice", "cluster:\n  peers: [\"http://b:1\", \"http://b:1/\"]\n  token: " + strings.Repeat("t", 32) + "\n", nil, "cluster.peers[1]", "once"},
		{"peers without token", "cluster:\n  peers: [\"http://node-b:8080\"]\n", nil, "cluster.token", "RETENTIOND_CLUSTER_TOKEN"},
		{"short token", "", map[string]string{"RETENTIOND_CLUSTER_PEERS": "http://node-b:8080", "RETENTIOND_CLUSTER_TOKEN": "short"}, "cluster.token", "at least 32"},
		{"zero peer timeout", "cluster:\n  peer_timeout: 0s\n", nil, "cluster.peer_timeout", "positive duration"},
		{"bare IP in allow", "ingest:\n  allow: [10.0.0.0/8, 192.0.2.7]\n", nil, "ingest.allow[1]", `"192.0.2.7/32"`},
		{"token bad sha256", "auth:\n  tokens:\n    - {name: alice, sha256: abc, roles: [search]}\n", nil, "auth.tokens[0].sha256", "sha256sum"},
		{"token upper-case sha256", "auth:\n  tokens:\n    - {name: alice, sha256: " + strings.Repeat("AB", 32) + ", roles: [search]}\n", nil, "auth.tokens[0].sha256", "lower-case"},
		{"token unknown role", "auth:\n  tokens:\n    - {name: alice, sha256: " + strings.Repeat("ab", 32) + ", roles: [root]}\n", nil, "auth.tokens[0].roles", "search, ingest, admin"},
		{"token no roles", "auth:\n  tokens:\n    - {name: alice, sha256: " + strings.Repeat("ab", 32) + "}\n", nil, "auth.tokens[0].roles", "at least one"},
		{"token duplicate name", "auth:\n  tokens:\n    - {name: a, sha256: " + strings.Repeat("ab", 32) + ", roles: [search]}\n    - {name: a, sha256: " + strings.Repeat("cd", 32) + ", roles: [search]}\n", nil, "auth.tokens[1].name", "its own name"},
		{"token bad name", "auth:\n  tokens:\n    - {name: \"bob smith\", sha256: " + strings.Repeat("ab", 32) + ", roles: [search]}\n", nil, "auth.tokens[0].name", "letters, digits"},
		{"empty data dir", "data_dir: \"\"\n", nil, "data_dir", "set the data directory"},
		{"negative concurrency", "search:\n  max_concurrency: -2\n", nil, "search.max_concurrency", "GOMAXPROCS"},
		{"zero default limit", "search:\n  default_limit: 0\n", nil, "search.default_limit", "above 0"},
		{"zero stats groups", "search:\n  stats_max_groups: 0\n", nil, "search.stats_max_groups", "100000"},
		{"stats key bytes below a path", "search:\n  stats_max_key_bytes: 64KiB\n", nil, "search.stats_max_key_bytes", "at least 1MiB"},
		{"bad bool", "purge:\n  on_start: maybe\n", nil, "on_start", "true or false"},
		{"not YAML", "listen: [\n", nil, "YAML", "line"},
		{"env unknown variable", "", map[string]string{"RETENTIOND_LISTEN_HTPP": "x"}, "RETENTIOND_LISTEN_HTPP", "did you mean RETENTIOND_LISTEN_HTTP?"},
		{"env bad bool", "", map[string]string{"RETENTIOND_PURGE_ON_START": "sometimes"}, "RETENTIOND_PURGE_ON_START", "true or false"},
		{"env bad byte size", "", map[string]string{"RETENTIOND_STORAGE_BLOCK_ROWS": "8k"}, "RETENTIOND_STORAGE_BLOCK_ROWS", "whole number"},
		{"env bad tokens JSON", "", map[string]string{"RETENTIOND_AUTH_TOKENS": "alice:abc"}, "RETENTIOND_AUTH_TOKENS", "JSON list"},
		{"env bad CIDR", "", map[string]string{"RETENTIOND_INGEST_ALLOW": "10.0.0.0/8,nope"}, "ingest.allow[1]", "CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := writeFile(t, t.TempDir(), "retentiond.yaml", tt.yaml)
			_, err := Load(file)
			if err == nil {
				t.Fatal("Load accepted a bad config")
			}
			msg := err.Error()
			for _, want := range []string{file, tt.wantKey, tt.wantFix} {
				if !strings.Contains(msg, want) {
					t.Errorf("message does not contain %q:\n%s", want, msg)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Errorf("error is %T, want *config.Error with problems", err)
			}
		})
	}
}

func TestUnknownKeysCarryLineNumbers(t *testing.T) {
	file := writeFile(t, t.TempDir(), "c.yaml", "retention: 2y\nlisten:\n  http: 127.0.0.1:8080\n  htttp: x\nsearch:\n  limit: 5\n")
	_, err := Load(file)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	var lines []int
	for _, p := range ce.Problems {
		var ke *KeyError
		if errors.As(p, &ke) {
			lines = append(lines, ke.Line)
		}
	}
	if !reflect.DeepEqual(lines, []int{4, 6}) {
		t.Errorf("lines = %v, want [4 6] (both unknown keys, in order); error:\n%v", lines, err)
	}
	if !strings.Contains(err.Error(), "line 6: search.limit: unknown key") {
		t.Errorf("message lacks line and key:\n%v", err)
	}
}

func TestValidateJoinsAllProblems(t *testing.T) {
	c := Default()
	c.Retention = policy.Retention{} // set in code: the loader would have refused "forever"
	c.Log.Level = "loud"
	c.Storage.BlockRows = -1
	c.Encryption.Enabled = true // without a master key file
	err := c.Validate()
	var keys []string
	for _, p := range unjoin(err) {
		var ke *KeyError
		if !errors.As(p, &ke) || ke.Fix == "" {
			t.Errorf("problem %v is not a *KeyError with a fix", p)
			continue
		}
		keys = append(keys, ke.Key)
	}
	if want := []string{"retention", "storage.block_rows", "encryption.master_key_file", "log.level"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
}

func TestValidSchedules(t *testing.T) {
	for _, s := range []string{"CRON_TZ=UTC 5 0 * * *", "TZ=Europe/Amsterdam 0 3 * * 1-5", "@daily", "*/15 * * * *", "5 0 * * *"} {
		c := Default()
		c.Purge.Schedule = s
		if err := c.Validate(); err != nil {
			t.Errorf("%q rejected: %v", s, err)
		}
	}
}

// sample returns a configuration in which every key differs from the
// default, for round-trip tests.
func sample(t *testing.T) *Config {
	t.Helper()
	c := Default()
	c.DataDir = "/var/lib/retentiond"
	c.Retention = policy.Retention{Days: 730}
	c.Listen.SyslogUDP = ""
	c.Purge.MaxDaysPerRun = 3
	c.Ingest.MaxLineBytes = 1000000
	c.Ingest.Allow = []string{"10.0.0.0/8", "2001:db8::/32"}
	c.Storage.FlushInterval = 90 * time.Second
	c.HTTP.WriteTimeout = 0
	c.Auth.Tokens = []Token{{Name: "alice", SHA256: strings.Repeat("0f", 32), Roles: []string{"search"}}}
	c.Audit.Path = "/var/lib/retentiond/audit"
	return c
}

func TestYAMLRoundTrip(t *testing.T) {
	c := sample(t)
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_line_bytes: 1000000\n", "flush_interval: 1m30s\n", "head_max_bytes: 256MiB\n", "max_future: 24h\n", `schedule: "CRON_TZ=UTC 5 0 * * *"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("YAML lacks %q:\n%s", want, out)
		}
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("YAML output does not load back: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", back, c)
	}
}

func TestRedacted(t *testing.T) {
	c := sample(t)
	hash := c.Auth.Tokens[0].SHA256
	r := c.Redacted()
	out, err := r.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), hash) || !strings.Contains(string(out), "REDACTED") {
		t.Errorf("redacted YAML still holds the token hash:\n%s", out)
	}
	if !strings.Contains(string(out), "name: \"alice\"") {
		t.Errorf("redacted YAML lost the token name:\n%s", out)
	}
	if c.Auth.Tokens[0].SHA256 != hash {
		t.Error("Redacted modified the original")
	}
	c.Cluster.Token = "node-token-of-at-least-32-characters-0123"
	if out, _ := c.Redacted().YAML(); strings.Contains(string(out), c.Cluster.Token) {
		t.Errorf("redacted YAML still holds the node token:\n%s", out)
	}
}

// TestObjectStorageChecks: the bucket section is checked only when an
// endpoint is set, cluster.node by objstore's rule, and the keys are
// redacted.
func TestObjectStorageChecks(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		key  string // the key of the expected problem; "" for none
	}{
		{"local only", func(c *Config) {}, ""},
		{"complete", func(c *Config) {
			c.ObjectStorage.Endpoint, c.ObjectStorage.Bucket, c.Cluster.Node = "https://s3.example.net", "b", "node-a"
		}, ""},
		{"no bucket", func(c *Config) { c.ObjectStorage.Endpoint, c.Cluster.Node = "http://127.0.0.1:8333", "n" }, "object_storage.bucket"},
		{"credentials in the URL", func(c *Config) {
			c.ObjectStorage.Endpoint, c.ObjectStorage.Bucket, c.Cluster.Node = "http://key:secret@127.0.0.1:8333", "b", "n"
		}, "object_storage.endpoint"},
		{"bad node", func(c *Config) { c.Cluster.Node = "a/b" }, "cluster.node"},
		{"zero cache", func(c *Config) { c.ObjectStorage.CacheBytes = 0 }, "object_storage.cache_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(c)
			err := c.Validate()
			var ke *KeyError
			switch {
			case tc.key == "" && err != nil:
				t.Fatalf("unexpected problem: %v", err)
			case tc.key != "" && (!errors.As(err, &ke) || ke.Key != tc.key):
				t.Fatalf("got %v, want a problem with %s", err, tc.key)
			}
		})
	}
	c := Default()
	c.ObjectStorage.AccessKeyID, c.ObjectStorage.SecretAccessKey = "AKIAEXAMPLE", "very-secret-key"
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "very-secret-key") || strings.Contains(string(out), "AKIAEXAMPLE") {
		t.Errorf("redacted YAML holds the bucket credentials:\n%s", out)
	}
}

func TestAuditPath(t *testing.T) {
	c := Default()
	if got, want := c.AuditPath(), filepath.Join("data", "audit"); got != want {
		t.Errorf("default AuditPath = %q, want %q", got, want)
	}
	c.Audit.Path = "/x/audit"
	if got := c.AuditPath(); got != "/x/audit" {
		t.Errorf("AuditPath = %q, want /x/audit", got)
	}
}

func TestHelpers(t *testing.T) {
	c := sample(t)
	ps := c.Ingest.AllowPrefixes()
	if len(ps) != 2 || ps[0].String() != "10.0.0.0/8" || ps[1].String() != "2001:db8::/32" {
		t.Errorf("AllowPrefixes = %v", ps)
	}
	if h := c.Auth.Tokens[0].Hash(); h[0] != 0x0f || h[31] != 0x0f {
		t.Errorf("Hash = %x", h)
	}
	if !c.Auth.Tokens[0].HasRole("search") || c.Auth.Tokens[0].HasRole("admin") {
		t.Error("HasRole wrong")
	}
	if Default().Search.Concurrency() < 1 {
		t.Error("Concurrency < 1")
	}
}

// TestExampleEqualsDefaults loads the shipped config.example.yaml and checks
// it is exactly the embedded defaults, so the example cannot drift.
func TestExampleEqualsDefaults(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c.File = ""
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("config.example.yaml differs from Default():\n got %+v\nwant %+v", c, Default())
	}
}

// TestExampleHasEveryKey checks that every key of the Config struct is
// written out in config.example.yaml (not merely defaulted) and documented.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := prefix + n.Content[i].Value
			present[k] = true
			if n.Content[i+1].Kind == yaml.MappingNode {
				walk(n.Content[i+1], k+".")
			}
		}
	}
	walk(doc.Content[0], "")
	for _, k := range Keys() {
		if !present[k.Name] {
			t.Errorf("key %s is missing from config.example.yaml", k.Name)
		}
		if keyDocs[k.Name] == "" {
			t.Errorf("key %s has no documentation in keyDocs", k.Name)
		}
		if !strings.Contains(string(data), k.Env) {
			t.Errorf("config.example.yaml does not name %s", k.Env)
		}
	}
	for key := range keyDocs {
		if !present[key] {
			t.Errorf("keyDocs documents %q, which is not a key", key)
		}
	}
}

// TestGeneratedDocs checks config.example.yaml and docs/configuration.md are
// what the generator writes today; run with -update to regenerate them.
func TestGeneratedDocs(t *testing.T) {
	example, err := exampleYAML()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{examplePath: example, docsPath: []byte(configurationMD())}
	for path, generated := range files {
		testkit.Golden(t, path, generated) // stale: go test ./internal/config -run TestGeneratedDocs -update
	}
	md := string(files[docsPath])
	for _, k := range Keys() {
		if !strings.Contains(md, "| `"+k.Name+"` |") || !strings.Contains(md, "`"+k.Env+"`") {
			t.Errorf("docs/configuration.md lacks a row for %s", k.Name)
		}
	}
}

// TestProductionFixture loads the configuration docs/install.md recommends
// and checks the values that differ from the defaults, while the rest keep
// their defaults.
func TestProductionFixture(t *testing.T) {
	c, err := Load("testdata/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "testdata/production.yaml"
	want.DataDir = "/var/lib/retentiond"
	want.Retention = policy.Retention{Days: 730}
	want.Listen = Listen{HTTP: "0.0.0.0:8443", SyslogUDP: "", SyslogTCP: "[::]:5514"}
	want.Purge.Schedule = "CRON_TZ=Europe/Amsterdam 15 1 * * *"
	want.Purge.MaxDaysPerRun = 3
	want.Ingest.MaxBodyBytes = 16 << 20
	want.Ingest.Allow = []string{"10.0.0.0/8", "2001:db8:1::/48"}
	want.Log.Format = "json"
	want.TLS = TLS{CertFile: "/run/credentials/retentiond.service/tls.crt", KeyFile: "/run/credentials/retentiond.service/tls.key"}
	want.Auth.Tokens = []Token{
		{Name: "alice", SHA256: "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90", Roles: []string{"search"}},
		{Name: "web-shipper", SHA256: "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9", Roles: []string{"ingest"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if c.AuditPath() != "/var/lib/retentiond/audit" {
		t.Errorf("AuditPath = %q", c.AuditPath())
	}
}
