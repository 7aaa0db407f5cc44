package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/retentiond/retentiond/internal/policy"
)

// Error is what Load returns when the configuration cannot be used: every
// problem found, so an operator fixes them all in one round.
type Error struct {
	Source   string  // file name, or "embedded defaults"
	Problems []error // *KeyError for bad keys and values
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("config %s: %v", e.Source, e.Problems[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s has %d problems:", e.Source, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap exposes the problems to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Problems }

// KeyError is one problem with one key: what is wrong and how to fix it.
type KeyError struct {
	Line    int    // line in the YAML file, 0 when unknown or not from the file
	Key     string // "purge.schedule", or an environment variable name
	Problem string // what is wrong, quoting the value
	Fix     string // what to write instead
}

func (e *KeyError) Error() string {
	s := e.Key + ": " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	if e.Line > 0 {
		s = "line " + strconv.Itoa(e.Line) + ": " + s
	}
	return s
}

// Load reads the configuration: embedded defaults, then the YAML file at
// path (or the first of DefaultPaths that exists when path is ""), then
// RETENTIOND_* environment variables. It returns an *Error listing every
// problem when the result is not usable. When no file is found it logs that
// it runs on the embedded defaults, so that nobody wonders why an edited file
// had no effect.
func Load(path string) (*Config, error) {
	file := path
	if file == "" {
		for _, p := range DefaultPaths {
			// Only a file that does not exist is skipped: an unreadable
			// /etc file must be an error, never a silent fall-back to
			// defaults with a different retention.
			if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
				file = p
				break
			}
		}
	}
	var data []byte
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil, &Error{Source: file, Problems: []error{fmt.Errorf("read config file: %w", err)}}
		}
	} else {
		slog.Info("no configuration file found; using embedded defaults and RETENTIOND_* variables",
			"tried", strings.Join(DefaultPaths, ", "))
	}
	c, problems := load(data, os.Environ())
	src := file
	if src == "" {
		src = "embedded defaults"
	}
	if len(problems) > 0 {
		return nil, &Error{Source: src, Problems: problems}
	}
	c.File = file
	if err := c.Validate(); err != nil {
		return nil, &Error{Source: src, Problems: unjoin(err)}
	}
	return c, nil
}

// Parse loads configuration from YAML bytes (plus the environment) without
// touching the file system; tests and `config show` round trips use it.
func Parse(data []byte) (*Config, error) {
	c, problems := load(data, os.Environ())
	if len(problems) > 0 {
		return nil, &Error{Source: "input", Problems: problems}
	}
	if err := c.Validate(); err != nil {
		return nil, &Error{Source: "input", Problems: unjoin(err)}
	}
	return c, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// load decodes data and environ over the defaults; it does not validate.
func load(data []byte, environ []string) (*Config, []error) {
	if problems := checkYAML(data); len(problems) > 0 {
		return nil, problems
	}
	if problems := checkEnv(environ); len(problems) > 0 {
		return nil, problems
	}

	v := viper.New()
	def := Default()
	// Every key gets a default: without one, AutomaticEnv never reaches
	// Unmarshal for that key (viper issues #761, #1509).
	for _, k := range Keys() {
		v.SetDefault(k.Name, k.Value(def).Interface())
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	// An empty variable is meaningful: RETENTIOND_LISTEN_SYSLOG_UDP=""
	// disables that listener.
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, []error{fmt.Errorf("parse YAML: %w", err)}
	}
	var c Config
	err := v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = decodeHook
		dc.WeaklyTypedInput = false
		dc.TagName = "mapstructure"
	})
	if err != nil {
		return nil, []error{fmt.Errorf("decode: %w", err)}
	}
	return &c, nil
}

// decodeHook turns the strings that come from the environment (and from
// quoted YAML) into typed values, with messages that say what to write.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() == reflect.String {
		if to.Kind() == reflect.String && to == reflect.TypeFor[string]() {
			return data, nil
		}
		if _, ok := stringConverters[to]; ok || slices.Contains([]reflect.Kind{reflect.Bool, reflect.Int}, to.Kind()) {
			return convertString(reflect.ValueOf(data).String(), to)
		}
		return data, nil
	}
	isNum := from.Kind() >= reflect.Int && from.Kind() <= reflect.Float64
	switch {
	case to == durationType && from != durationType && isNum:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v has no unit; write a Go duration such as \"90s\", \"5m\" or \"24h\"", data)
	case to == retentionType && isNum:
		// "retention: 730" in YAML: ParseRetention says to add a unit.
		return convertString(fmt.Sprint(data), to)
	case to.Kind() == reflect.String && isNum:
		// Let Validate explain what a retention or address should look
		// like instead of a bare type error.
		return fmt.Sprint(data), nil
	}
	return data, nil
}

// stringConverters parse the non-trivial types from their text form.
var stringConverters = map[reflect.Type]func(string) (any, error){
	durationType: func(s string) (any, error) {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration; write a Go duration such as \"90s\", \"5m\" or \"1h30m\"", s)
		}
		return d, nil
	},
	byteSizeType: func(s string) (any, error) { return ParseByteSize(s) },
	retentionType: func(s string) (any, error) {
		r, err := policy.ParseRetention(s)
		if err != nil {
			return nil, fmt.Errorf("%w; %s", err, policy.RetentionHint)
		}
		return r, nil
	},
	stringsType: func(s string) (any, error) {
		out := []string{}
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out, nil
	},
	tokensType: func(s string) (any, error) {
		out := []Token{}
		if strings.TrimSpace(s) == "" {
			return out, nil
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("not a JSON list of tokens (%w); write e.g. [{\"name\":\"alice\",\"sha256\":\"<64 hex>\",\"roles\":[\"search\"]}]", err)
		}
		return out, nil
	},
}

func convertString(s string, to reflect.Type) (any, error) {
	if conv, ok := stringConverters[to]; ok {
		return conv(s)
	}
	switch to.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean; write true or false", s)
		}
		return b, nil
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number; write e.g. 0 or 1024", s)
		}
		return n, nil
	case reflect.String:
		return s, nil
	}
	return nil, fmt.Errorf("cannot set a %s from text", to)
}

// checkEnv reports RETENTIOND_* variables that set no key (a typo there
// would otherwise be ignored silently) and values that do not parse, naming
// the variable rather than the key.
func checkEnv(environ []string) []error {
	byEnv := map[string]Key{}
	var names []string
	for _, k := range Keys() {
		byEnv[k.Env] = k
		names = append(names, k.Env)
	}
	var problems []error
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") || slices.Contains(ClientEnv, name) {
			continue
		}
		k, ok := byEnv[name]
		if !ok {
			problems = append(problems, &KeyError{Key: name, Problem: "is not a configuration variable",
				Fix: suggest(name, names, "see docs/configuration.md for the variables; unset it")})
			continue
		}
		if _, err := convertString(val, k.Type); err != nil {
			problems = append(problems, &KeyError{Key: name, Problem: err.Error(), Fix: "it sets " + k.Name})
		}
	}
	return problems
}

// checkYAML walks the YAML document against the Config struct, reporting
// unknown keys with their line numbers. Viper lower-cases keys and only
// reports unknown ones without a position; this makes a typo easy to find.
func checkYAML(data []byte) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []error{fmt.Errorf("not valid YAML: %w", err)}
	}
	if len(doc.Content) == 0 {
		return nil // empty file: defaults only
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return []error{&KeyError{Line: root.Line, Key: "(top level)", Problem: "is not a mapping of keys",
			Fix: "write `key: value` lines, as in config.example.yaml"}}
	}
	var problems []error
	walkYAML(root, reflect.TypeFor[Config](), "", &problems)
	return problems
}

func walkYAML(n *yaml.Node, t reflect.Type, prefix string, problems *[]error) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := prefix + k.Value
		ft, ok := fields[k.Value]
		if !ok {
			fix := "known keys"
			if prefix != "" {
				fix += " under " + strings.TrimSuffix(prefix, ".")
			}
			fix += ": " + strings.Join(fieldNames(t), ", ")
			*problems = append(*problems, &KeyError{Line: k.Line, Key: name, Problem: "unknown key",
				Fix: suggest(k.Value, fieldNames(t), fix)})
			continue
		}
		switch {
		case isSection(ft) && v.Kind == yaml.MappingNode:
			walkYAML(v, ft, name+".", problems)
		case isSection(ft) && (v.Kind != yaml.ScalarNode || v.Tag != "!!null"):
			*problems = append(*problems, &KeyError{Line: k.Line, Key: name, Problem: "is a section, not a value",
				Fix: "indent its keys below it (" + strings.Join(fieldNames(ft), ", ") + ") or remove the line"})
		case ft == retentionType && v.Kind == yaml.ScalarNode:
			// Checked here rather than left to the decoder, so that the
			// message names the key and its line like every other problem.
			if _, err := policy.ParseRetention(v.Value); err != nil {
				*problems = append(*problems, &KeyError{Line: v.Line, Key: name, Problem: err.Error(), Fix: policy.RetentionHint})
			}
		case ft == tokensType && v.Kind == yaml.SequenceNode:
			for j, item := range v.Content {
				if item.Kind == yaml.MappingNode {
					walkYAML(item, reflect.TypeFor[Token](), fmt.Sprintf("%s[%d].", name, j), problems)
				}
			}
		}
	}
}

// suggest returns "did you mean X?" when a known name is close to the
// unknown one, else fallback.
func suggest(got string, known []string, fallback string) string {
	best, bestD := "", 3
	for _, k := range known {
		g, kl := strings.ToLower(got), strings.ToLower(k)
		d := editDistance(g, kl)
		if len(g) >= 3 && strings.HasPrefix(kl, g) {
			d = 1 // a truncated name ("sha" for "sha256")
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return fallback
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
