package evidence

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Format names the bundle layout; Verify refuses layouts it does not know.
const Format = "retentiond-evidence/1"

// Member names of a bundle.
const (
	RecordsFile  = "records.ndjson" // the records, one JSON object a line, as the search API sends them
	BundleFile   = "bundle.json"    // Meta: what was asked, by whom, when, under which case
	KeyFileName  = "signing-key.pub"
	ManifestFile = "manifest.json" // Manifest: SHA-256 of every other member, and the public key
	SigFile      = "manifest.sig"  // base64 ed25519 signature of manifest.json's exact bytes
)

// AuditRef is one search made under the case, as the audit log holds it.
type AuditRef struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Endpoint string `json:"endpoint"`
	Outcome  string `json:"outcome"`
	Token    string `json:"token,omitempty"`
	Query    string `json:"query,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Count    *int64 `json:"count,omitempty"`
}

// Meta is bundle.json: the context a reader needs to weigh the records.
type Meta struct {
	Format     string    `json:"format"`
	Case       string    `json:"case"`
	Reason     string    `json:"reason"`
	Query      string    `json:"query"`
	From       time.Time `json:"from"` // resolved range, [from, to)
	To         time.Time `json:"to"`
	ExportedBy string    `json:"exported_by"` // token name; "" in development mode
	Source     string    `json:"source,omitempty"`
	ExportedAt time.Time `json:"exported_at"`
	Records    int64     `json:"records"`
	// AuditSeq is the sequence number of the audit line written (and
	// fsynced) before this export ran.
	AuditSeq int64 `json:"audit_seq"`
	// CaseSearches are the searches made under the same case before this
	// export, from the audit log (allowed lines only, with their counts).
	CaseSearches []AuditRef `json:"case_searches"`
	// Skipped names damaged segment files the search had to leave out: a
	// non-empty list means the records are incomplete.
	Skipped []string `json:"skipped,omitempty"`
	Daemon  string   `json:"daemon_version,omitempty"`
}

// ManifestEntry is one member's digest.
type ManifestEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Manifest is manifest.json.
type Manifest struct {
	Format         string          `json:"format"`
	Files          []ManifestEntry `json:"files"`
	PublicKey      string          `json:"public_key"`
	KeyFingerprint string          `json:"key_fingerprint"`
}

// Writer streams a bundle to an io.Writer: records first (so an export of
// millions of records is never held in memory), then the metadata, the
// manifest and its signature.
type Writer struct {
	zw      *zip.Writer
	key     *Key
	at      time.Time
	entries []ManifestEntry
	cur     *hashingWriter
}

// NewWriter starts a bundle on w, stamped with time at (the export time:
// every member carries it, so the same export gives the same bytes).
func NewWriter(w io.Writer, key *Key, at time.Time) *Writer {
	return &Writer{zw: zip.NewWriter(w), key: key, at: at.UTC()}
}

type hashingWriter struct {
	w    io.Writer
	h    hash.Hash
	n    int64
	name string
}

func (h *hashingWriter) Write(b []byte) (int, error) {
	n, err := h.w.Write(b)
	h.h.Write(b[:n])
	h.n += int64(n)
	return n, err
}

func (w *Writer) closeMember() {
	if w.cur != nil {
		w.entries = append(w.entries, ManifestEntry{Name: w.cur.name, SHA256: hex.EncodeToString(w.cur.h.Sum(nil)), Bytes: w.cur.n})
		w.cur = nil
	}
}

func (w *Writer) member(name string) (io.Writer, error) {
	w.closeMember()
	zf, err := w.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: w.at})
	if err != nil {
		return nil, fmt.Errorf("evidence bundle %s: %w", name, err)
	}
	w.cur = &hashingWriter{w: zf, h: sha256.New(), name: name}
	return w.cur, nil
}

// Records returns the writer of records.ndjson; call it once, before Finish.
func (w *Writer) Records() (io.Writer, error) { return w.member(RecordsFile) }

// Finish writes bundle.json from meta, the public key, the manifest and its
// signature, and closes the zip (not the underlying writer).
func (w *Writer) Finish(meta Meta) error {
	meta.Format = Format
	meta.ExportedAt = w.at
	if meta.CaseSearches == nil {
		meta.CaseSearches = []AuditRef{}
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("evidence bundle: %w", err)
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{BundleFile, append(mb, '\n')}, {KeyFileName, []byte(w.key.PublicText() + "\n")}} {
		mw, err := w.member(m.name)
		if err != nil {
			return err
		}
		if _, err := mw.Write(m.data); err != nil {
			return fmt.Errorf("evidence bundle %s: %w", m.name, err)
		}
	}
	w.closeMember()
	man := Manifest{Format: Format, Files: w.entries, PublicKey: w.key.PublicText(), KeyFingerprint: Fingerprint(w.key.Public())}
	manb, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("evidence bundle: %w", err)
	}
	manb = append(manb, '\n')
	sig := base64.StdEncoding.EncodeToString(w.key.Sign(manb)) + "\n"
	for _, m := range []struct {
		name string
		data []byte
	}{{ManifestFile, manb}, {SigFile, []byte(sig)}} {
		zf, err := w.zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: w.at})
		if err != nil {
			return fmt.Errorf("evidence bundle %s: %w", m.name, err)
		}
		if _, err := zf.Write(m.data); err != nil {
			return fmt.Errorf("evidence bundle %s: %w", m.name, err)
		}
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("evidence bundle: %w", err)
	}
	return nil
}

// ErrAltered is wrapped by Verify's error when the bundle is not what the
// daemon signed.
var ErrAltered = errors.New("evidence bundle altered")
