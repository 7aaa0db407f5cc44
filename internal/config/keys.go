package config

import (
	"reflect"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/policy"
)

// EnvPrefix is the prefix of every environment variable that sets a key.
const EnvPrefix = "RETENTIOND"

// ClientEnv are RETENTIOND_* variables that belong to the command-line
// client, not to a configuration key; Load leaves them alone instead of
// reporting them as unknown.
var ClientEnv = []string{"RETENTIOND_SERVER", "RETENTIOND_TOKEN"}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	tokensType   = reflect.TypeFor[[]Token]()
	stringsType  = reflect.TypeFor[[]string]()
	// retentionType is a struct, but one value written as text ("2y").
	retentionType = reflect.TypeFor[policy.Retention]()
)

// Key describes one configuration key: its dotted name, its environment
// variable and its Go type.
type Key struct {
	Name string       // "purge.schedule"
	Env  string       // "RETENTIOND_PURGE_SCHEDULE"
	Type reflect.Type // the field's type
	path []int        // field index path inside Config
}

// EnvName returns the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every configuration key in struct order. It is derived from the
// Config struct by reflection, so a new field is automatically loaded from
// the environment, given a default, documented and tested.
func Keys() []Key {
	var keys []Key
	var walk func(t reflect.Type, prefix string, path []int)
	walk = func(t reflect.Type, prefix string, path []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			name := prefix + tag
			p := append(append([]int{}, path...), i)
			if isSection(f.Type) {
				walk(f.Type, name+".", p)
				continue
			}
			keys = append(keys, Key{Name: name, Env: EnvName(name), Type: f.Type, path: p})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return keys
}

// isSection reports whether a field type is a nested group of keys rather
// than a value.
func isSection(t reflect.Type) bool { return t.Kind() == reflect.Struct && t != retentionType }

// Value returns the value of key k inside c (addressable, so tests and the
// loader can also set it).
func (k Key) Value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.path)
}

// sectionFields maps a YAML mapping's Go type to its keys, for the strict
// YAML walk.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = f.Type
	}
	return m
}

// fieldNames lists a struct type's keys in struct order, for messages.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}
