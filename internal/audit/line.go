package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Genesis is the prev hash of the very first line of a chain: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Event types.
const (
	EventSearch   = "search"   // a search, count, stats or export attempt
	EventPurge    = "purge"    // old audit files were removed; carries the anchor
	EventRecovery = "recovery" // the log repaired a torn last line at start-up
	EventCase     = "case"     // a change to the case registry (internal/cases), or a refused attempt at one
)

// Outcomes of case lines. The endpoint field names the action (open,
// approve, close, expire); a refused attempt has OutcomeRefused and the
// reason in the error field.
const (
	OutcomeOpened            = "opened"             // a case was registered, awaiting approval
	OutcomeApproved          = "approved"           // a second admin approved it: searches may run under it
	OutcomeEmergencyApproved = "emergency_approved" // the opener approved it alone (break-glass), with a justification
	OutcomeClosed            = "closed"             // closed by an admin: no more searches
	OutcomeExpired           = "expired"            // its expiry passed: no more searches
)

// Outcomes of search lines.
const (
	OutcomeRefused = "refused" // the request was refused (authentication, missing case or reason); nothing ran
	OutcomeAllowed = "allowed" // written and fsynced before the search runs
	OutcomeDone    = "done"    // the search finished; carries count, bytes and duration; ref = the allowed line
	OutcomeError   = "error"   // the search ran but failed (status >= 400); ref = the allowed line
)

// line is the on-disk shape of one audit line. Field order is fixed by this
// struct, and the hash covers the exact bytes, so the order never has to be
// reproduced by a verifier: it only has to strip the hash field.
type line struct {
	Seq          int64    `json:"seq"`
	Time         string   `json:"time"`
	Event        string   `json:"event"`
	Endpoint     string   `json:"endpoint,omitempty"`
	Outcome      string   `json:"outcome,omitempty"`
	Ref          int64    `json:"ref,omitempty"`
	Token        string   `json:"token,omitempty"`
	Source       string   `json:"source,omitempty"`
	Case         string   `json:"case,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Query        string   `json:"query,omitempty"`
	From         string   `json:"from,omitempty"`
	To           string   `json:"to,omitempty"`
	Params       string   `json:"params,omitempty"`
	Status       int      `json:"status,omitempty"`
	Count        *int64   `json:"count,omitempty"`
	Bytes        int64    `json:"bytes,omitempty"`
	SHA256       string   `json:"sha256,omitempty"`
	Duration     *float64 `json:"duration_seconds,omitempty"`
	Error        string   `json:"error,omitempty"`
	AnchorFile   string   `json:"anchor_file,omitempty"`
	AnchorSeq    int64    `json:"anchor_seq,omitempty"`
	AnchorPrev   string   `json:"anchor_prev,omitempty"`
	PurgedFiles  int      `json:"purged_files,omitempty"`
	PurgedBefore string   `json:"purged_before,omitempty"`
	Title        string   `json:"title,omitempty"`
	Expires      string   `json:"expires,omitempty"`
	Prev         string   `json:"prev"`
}

const hashPrefix = `,"hash":"`

// encodeLine returns the full line (with the trailing newline) and its hash.
// The body is the JSON object without the hash field; the hash is the hex
// SHA-256 of the body, and the line is the body with `,"hash":"<hex>"`
// inserted before its closing brace.
func encodeLine(l *line) (b []byte, hash string, err error) {
	body, err := json.Marshal(l)
	if err != nil {
		return nil, "", fmt.Errorf("encode audit line: %w", err)
	}
	sum := sha256.Sum256(body)
	hash = hex.EncodeToString(sum[:])
	b = make([]byte, 0, len(body)+len(hashPrefix)+len(hash)+3)
	b = append(b, body[:len(body)-1]...)
	b = append(b, hashPrefix...)
	b = append(b, hash...)
	b = append(b, '"', '}', '\n')
	return b, hash, nil
}

var errNoHash = errors.New(`line does not end in ,"hash":"<64 hex digits>"}`)

// parseLine checks one line (without its newline): that it ends in a hash
// field, that the hash matches the body, and that the body is a JSON object
// of the expected shape. It returns the decoded line and its hash.
func parseLine(b []byte) (*line, string, error) {
	const hexLen = 2 * sha256.Size
	suffixLen := len(hashPrefix) + hexLen + 2
	if len(b) < suffixLen+2 || b[0] != '{' || !bytes.HasSuffix(b, []byte(`"}`)) ||
		!bytes.Equal(b[len(b)-suffixLen:len(b)-suffixLen+len(hashPrefix)], []byte(hashPrefix)) {
		return nil, "", errNoHash
	}
	hash := string(b[len(b)-hexLen-2 : len(b)-2])
	if !isLowerHex(hash) {
		return nil, "", errNoHash
	}
	body := make([]byte, 0, len(b)-suffixLen+1)
	body = append(body, b[:len(b)-suffixLen]...)
	body = append(body, '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, hash, errHashMismatch
	}
	var l line
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, hash, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, hash, errors.New("decode: trailing data")
	}
	if l.Seq < 1 {
		return nil, hash, fmt.Errorf("seq %d is not positive", l.Seq)
	}
	if !isLowerHex(l.Prev) || len(l.Prev) != hexLen {
		return nil, hash, errors.New("prev is not 64 hex digits")
	}
	if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
		return nil, hash, fmt.Errorf("time: %w", err)
	}
	return &l, hash, nil
}

var errHashMismatch = errors.New("hash does not match the line's contents: the line was edited")

func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// sanitize makes an untrusted string safe to print on a terminal: control
// characters (including ESC, which starts terminal escape sequences) are
// shown as \xNN, and invisible format characters (bidi overrides, zero-width
// characters, which older lines may hold) as \uNNNN, so that what is shown
// reads as what is stored.
func sanitize(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return isControl(r) || isFormat(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isFormat(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
