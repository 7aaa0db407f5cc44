// Package report writes and checks signed reports: what a purge or an
// erasure destroyed, in a form the daemon cannot edit afterwards without
// the edit showing. A report is a JSON document with a digest of every
// field (every leaf of the JSON tree, by its path) and an Ed25519
// signature over those digests with the daemon's key (internal/signing).
// The per-field digests are what lets Verify name the field that was
// changed, instead of only saying that the signature fails: an edit of a
// value breaks its digest, and an edit of the digests breaks the signature.
//
// Reports are kept in <data_dir>/reports/ for the audit retention (Dir),
// served at /api/v1/admin/reports (Handler) and checked offline by
// `retentiond report verify FILE`.
package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/signing"
)

// Format names the report layout; Verify refuses layouts it does not know.
const Format = "retentiond-report/1"

// Kinds of report.
const (
	KindPurge   = "purge"   // a purge run: scheduled, start-up or manual
	KindErasure = "erasure" // the erasure of one address or network
)

// Top-level members that are not themselves signed fields: they carry the
// signature.
const (
	fieldDigests   = "digests"
	fieldSignature = "signature"
	fieldKey       = "public_key"
)

// document is the file's shape. Report holds the kind's own body; the
// other members are fixed.
type document struct {
	Format    string            `json:"format"`
	Kind      string            `json:"kind"`
	Created   time.Time         `json:"created"`
	Report    any               `json:"report"`
	Digests   map[string]string `json:"digests"`
	PublicKey string            `json:"public_key"`
	Signature string            `json:"signature"`
}

// Sign returns the signed report file of the given kind for body (any
// value that encodes to a JSON object), created at created.
func Sign(key *signing.Key, kind string, created time.Time, body any) ([]byte, error) {
	doc := document{Format: Format, Kind: kind, Created: created.UTC(), Report: body, PublicKey: key.PublicText()}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	leaves, err := fields(raw)
	if err != nil {
		return nil, err
	}
	doc.Digests = make(map[string]string, len(leaves))
	for path, v := range leaves {
		doc.Digests[path] = digest(path, v)
	}
	doc.Signature = base64.StdEncoding.EncodeToString(key.Sign(signedBytes(doc.PublicKey, doc.Digests)))
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// Problem is one thing Verify found wrong, naming the field.
type Problem struct {
	Field  string // a field path such as report.days[0].records, or signature / public_key
	Reason string
}

func (p Problem) String() string { return p.Field + ": " + p.Reason }

// Result is what Verify found.
type Result struct {
	Kind        string
	Created     time.Time
	Fingerprint string // of the key that signed it
	// Pinned says the signature was checked against a trusted key given
	// by the caller; otherwise only against the key the report carries,
	// which proves that nothing changed after signing, not who signed.
	Pinned   bool
	Fields   int       // signed fields
	Problems []Problem // empty: the report is intact
}

// Verify checks a report file. trusted, when not nil, is the daemon's
// published public key the report must be signed with. An error means the
// bytes are not a report at all; an edited report is reported in
// Result.Problems, naming each changed, added or removed field.
func Verify(b []byte, trusted ed25519.PublicKey) (Result, error) {
	var res Result
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return res, fmt.Errorf("not a report: %w", err)
	}
	var doc struct {
		Format    string            `json:"format"`
		Kind      string            `json:"kind"`
		Created   time.Time         `json:"created"`
		Digests   map[string]string `json:"digests"`
		PublicKey string            `json:"public_key"`
		Signature string            `json:"signature"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return res, fmt.Errorf("not a report: %w", err)
	}
	if doc.Format != Format {
		return res, fmt.Errorf("not a report: format %q, want %q", doc.Format, Format)
	}
	res.Kind, res.Created, res.Fields = doc.Kind, doc.Created, len(doc.Digests)
	bad := func(field, reason string) { res.Problems = append(res.Problems, Problem{field, reason}) }

	pub, err := signing.ParsePublic(doc.PublicKey)
	if err != nil {
		bad(fieldKey, err.Error())
	} else {
		res.Fingerprint = signing.Fingerprint(pub)
		if trusted != nil {
			res.Pinned = true
			if !pub.Equal(trusted) {
				bad(fieldKey, "signed with a different key than the trusted one (fingerprint "+res.Fingerprint+")")
			}
		}
		sig, err := base64.StdEncoding.DecodeString(doc.Signature)
		if err != nil || !ed25519.Verify(pub, signedBytes(doc.PublicKey, doc.Digests), sig) {
			bad(fieldSignature, "does not verify: the digests, the key or the signature were altered")
		}
	}
	leaves, err := fields(b)
	if err != nil {
		return res, err
	}
	for _, path := range slices.Sorted(maps.Keys(leaves)) {
		want, ok := doc.Digests[path]
		switch {
		case !ok:
			bad(path, "added after signing")
		case digest(path, leaves[path]) != want:
			bad(path, "changed after signing")
		}
	}
	for _, path := range slices.Sorted(maps.Keys(doc.Digests)) {
		if _, ok := leaves[path]; !ok {
			bad(path, "removed after signing")
		}
	}
	return res, nil
}

// signedBytes is what the signature covers: the format, the public key
// and every field's digest, one per line in path order.
func signedBytes(pub string, digests map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(Format + "\n" + pub + "\n")
	for _, path := range slices.Sorted(maps.Keys(digests)) {
		b.WriteString(path + "\t" + digests[path] + "\n")
	}
	return b.Bytes()
}

// digest binds a field's canonical value to its path: moving a value to
// another field changes it as much as changing the value.
func digest(path, canonical string) string {
	s := sha256.Sum256([]byte(path + "\x00" + canonical))
	return hex.EncodeToString(s[:])
}

// fields flattens a report document into its signed leaves: path →
// canonical JSON of the value. Objects and arrays are walked (an empty
// one is itself a leaf, so emptying it shows); numbers keep their literal
// text. The signature members are left out.
func fields(b []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a report: %w", err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a report: not a JSON object")
	}
	out := make(map[string]string)
	for k, v := range top {
		switch k {
		case fieldDigests, fieldSignature, fieldKey:
			continue
		}
		flatten(out, k, v)
	}
	return out, nil
}

func flatten(out map[string]string, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[path] = "{}"
		}
		for k, c := range x {
			flatten(out, path+"."+k, c)
		}
	case []any:
		if len(x) == 0 {
			out[path] = "[]"
		}
		for i, c := range x {
			flatten(out, path+"["+strconv.Itoa(i)+"]", c)
		}
	case json.Number:
		out[path] = x.String()
	default:
		b, _ := json.Marshal(x) // strings, booleans and null always encode
		out[path] = string(b)
	}
}

// Describe is a one-line summary of a Result for the command line.
func (r Result) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s report of %s, %d signed fields, key %s", r.Kind, r.Created.UTC().Format(time.RFC3339), r.Fields, r.Fingerprint)
	if !r.Pinned {
		b.WriteString(" (not pinned: pass --key with the daemon's published key to prove who signed it)")
	}
	return b.String()
}
