package parse

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdFields derives what scanJSON must find from encoding/json's reading of
// the same object: per field, the value of the most preferred alias whose
// (last) value is a string, or for the time also a number.
func stdFields(m map[string]any) (vals [nFields]string, present [nFields]bool, timeIsNum bool, pathKey string) {
	for f, keys := range [nFields][]string{timeKeys, domainKeys, pathKeys, uaKeys, ipKeys} {
		for _, k := range keys {
			switch v := m[k].(type) {
			case string:
				vals[f], present[f] = v, true
			case json.Number:
				if f != fTime {
					continue
				}
				vals[f], present[f], timeIsNum = string(v), true, true
			default:
				continue
			}
			if f == fPath {
				pathKey = k
			}
			break
		}
	}
	return
}

// FuzzJSONDifferential compares the hand-written scanner with encoding/json:
// both accept the same objects, and find the same values. Two differences
// are intended and skipped: nesting deeper than 64 levels (refused here,
// where no access log nests), and bytes that are not valid UTF-8 (kept as
// sent here as evidence, replaced by U+FFFD there).
func FuzzJSONDifferential(f *testing.F) {
	for _, s := range []string{
		`{` + jsonBase, `{"a":01,` + jsonBase, `{"a":1.,` + jsonBase, `{"ip":"192.0.2.1","ip":"192.0.2.2"}`,
		`{"ts":"2026-11-21T16:27:08Z","host":"h","request":"GET /x HTTP/1.1","remote_addr":"::1","ua":"\u00e9\ud83d\ude00"}`,
		`{"a":[true,false,null,{"b":"c"}],"msec":1763742428.123}`, `{}`, `[]`, `null`, `{"a":"\ud800"}`, ` {"a" : "b" } `,
		`{"t\u0069me":"2026-11-21T16:27:08Z","ip\"":"x","ip":"192.0.2.1","user_agent":"a","ua":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var sc jsonFields
		scanErr := scanJSON(b, &sc)
		var m map[string]any
		var stdErr error
		if !json.Valid(b) {
			stdErr = errors.New("not valid JSON")
		} else {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if stdErr = d.Decode(&m); stdErr == nil && m == nil {
				stdErr = errors.New("not an object") // null
			}
		}
		if scanErr != nil && strings.Contains(scanErr.Error(), "nested too deeply") {
			return
		}
		if (scanErr == nil) != (stdErr == nil) {
			t.Fatalf("%q: scanJSON err %v, encoding/json err %v", b, scanErr, stdErr)
		}
		if scanErr != nil || !utf8.Valid(b) {
			return
		}
		vals, present, timeIsNum, pathKey := stdFields(m)
		for fi := range nFields {
			if sc.present(fi) != present[fi] || sc.value(fi) != vals[fi] {
				t.Fatalf("%q: field %d: scanJSON %v %q, encoding/json %v %q", b, fi, sc.present(fi), sc.value(fi), present[fi], vals[fi])
			}
		}
		if present[fTime] && sc.timeIsNum() != timeIsNum {
			t.Fatalf("%q: time is a number: scanJSON %v, encoding/json %v", b, sc.timeIsNum(), timeIsNum)
		}
		if present[fPath] && sc.pathKey() != pathKey {
			t.Fatalf("%q: path key: scanJSON %q, encoding/json %q", b, sc.pathKey(), pathKey)
		}
	})
}
