package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/retentiond/retentiond/internal/policy"
)

// YAML renders the configuration as YAML in the same form an operator
// writes: durations as "5m", sizes as "64MiB", keys in documentation order.
// Parse reads the output back to an equal Config.
func (c *Config) YAML() ([]byte, error) {
	return renderYAML(encodeNode(reflect.ValueOf(*c), "", nil))
}

func renderYAML(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return b.Bytes(), nil
}

// encodeNode builds the YAML node of v. comment, when set, returns the head
// comment for a key (used to generate config.example.yaml).
func encodeNode(v reflect.Value, prefix string, comment func(key string) string) *yaml.Node {
	t := v.Type()
	switch t {
	case durationType:
		return scalar("!!str", FormatDuration(time.Duration(v.Int())), 0)
	case retentionType:
		return scalar("!!str", v.Interface().(policy.Retention).String(), yaml.DoubleQuotedStyle)
	case byteSizeType:
		s := ByteSize(v.Int()).String()
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return scalar("!!int", s, 0)
		}
		return scalar("!!str", s, 0)
	}
	switch t.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := range t.NumField() {
			tag := t.Field(i).Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			k := scalar("!!str", tag, 0)
			if comment != nil {
				k.HeadComment = comment(prefix + tag)
			}
			m.Content = append(m.Content, k, encodeNode(v.Field(i), prefix+tag+".", comment))
		}
		return m
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Len() == 0 {
			s.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			s.Content = append(s.Content, encodeNode(v.Index(i), prefix, nil))
		}
		return s
	case reflect.String:
		return scalar("!!str", v.String(), yaml.DoubleQuotedStyle)
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()), 0)
	case reflect.Int, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10), 0)
	}
	panic(fmt.Sprintf("config: no YAML encoding for %s", t)) // a new field type needs a case here
}

func scalar(tag, value string, style yaml.Style) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Style: style}
}

// FormatDuration writes d without the zero units Go's String adds
// ("5m" rather than "5m0s", "24h" rather than "24h0m0s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FlowYAML renders the token as one YAML flow mapping, the entry `token
// create` prints for an operator to paste under auth.tokens. Every string
// is double-quoted, so that a name YAML would otherwise read as a number, a
// boolean or null ("007", "true", "null") loads as written.
func (t Token) FlowYAML() (string, error) {
	n := encodeNode(reflect.ValueOf(t), "", nil)
	n.Style = yaml.FlowStyle
	for _, c := range n.Content {
		if c.Kind == yaml.SequenceNode {
			c.Style = yaml.FlowStyle
		}
	}
	b, err := renderYAML(n)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}
