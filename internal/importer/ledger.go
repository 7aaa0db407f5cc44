package importer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// headBytes is how much content identifies a file quickly: an earlier import
// is a candidate for "this content again" only if the first line boundary at
// or after headBytes (or its whole content, if shorter) hashes the same.
const headBytes = 64 << 10

// ledgerVersion is the on-disk format of the ledger file.
const ledgerVersion = 1

// Entry is what the ledger knows about one import run of one file: how far
// its content was acknowledged by the destination, and the SHA-256 of that
// prefix. Content means the decompressed bytes, so access.log.1 and the
// access.log.2.gz logrotate later makes of it are the same file.
type Entry struct {
	// ID names the entry; a resumed run continues its entry.
	ID string `json:"id"`
	// Dest is the destination the records went to (daemon URL or data directory).
	Dest string `json:"dest"`
	// Name is the file name as given, for messages only.
	Name string `json:"name"`
	// HeadLen and HeadSHA256 identify the start of the content (see headBytes).
	HeadLen    int64  `json:"head_len"`
	HeadSHA256 string `json:"head_sha256"`
	// Offset is how many content bytes were acknowledged (a line boundary),
	// Lines how many lines that is, SHA256 the hash of those bytes.
	Offset int64  `json:"offset"`
	Lines  int64  `json:"lines"`
	SHA256 string `json:"sha256"`
	// Complete says the whole file was imported: Offset is its size.
	Complete bool      `json:"complete"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
}

type ledgerFile struct {
	Version int      `json:"version"`
	Entries []*Entry `json:"entries"`
}

// Ledger is the durable record of imported files, one JSON file rewritten
// atomically (fsutil.WriteFile) after every acknowledged batch. An exclusive
// lock on a sibling ".lock" file keeps two imports from racing on it.
type Ledger struct {
	path    string
	lock    *fsutil.Lock
	entries []*Entry
}

// OpenLedger loads (or starts) the ledger at path and locks it for this
// process. Close releases the lock.
func OpenLedger(path string) (*Ledger, error) {
	if err := fsutil.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create ledger directory: %w", err)
	}
	lf, err := fsutil.FS{}.Lock(path + ".lock")
	if errors.Is(err, fsutil.ErrLockHeld) {
		return nil, fmt.Errorf("ledger %s is in use by another import; wait for it to finish", path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock ledger %s: %w", path, err)
	}
	l := &Ledger{path: path, lock: lf}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l, nil
	case err != nil:
		l.Close()
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		l.Close()
		return nil, fmt.Errorf("ledger %s is corrupt (%w); move it aside to start a new one, at the risk of importing files twice", path, err)
	}
	if f.Version != ledgerVersion {
		l.Close()
		return nil, fmt.Errorf("ledger %s has version %d, this retentiond understands %d", path, f.Version, ledgerVersion)
	}
	l.entries = f.Entries
	return l, nil
}

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Entries returns a copy of the ledger's entries.
func (l *Ledger) Entries() []Entry {
	out := make([]Entry, len(l.entries))
	for i, e := range l.entries {
		out[i] = *e
	}
	return out
}

// Close releases the lock.
func (l *Ledger) Close() error {
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close()
	l.lock = nil
	return err
}

// candidates returns the entries for dest, largest offset first: the
// earlier imports a file could be a repeat or a continuation of.
func (l *Ledger) candidates(dest string) []*Entry {
	var out []*Entry
	for _, e := range l.entries {
		if e.Dest == dest && e.Offset > 0 {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *Entry) int {
		switch {
		case a.Offset > b.Offset:
			return -1
		case a.Offset < b.Offset:
			return 1
		}
		return 0
	})
	return out
}

// put adds e (or keeps it, if already present) and writes the ledger durably.
func (l *Ledger) put(e *Entry) error {
	if !slices.Contains(l.entries, e) {
		l.entries = append(l.entries, e)
	}
	return l.save()
}

func (l *Ledger) save() error {
	b, err := json.MarshalIndent(ledgerFile{Version: ledgerVersion, Entries: l.entries}, "", " ")
	if err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	if err := fsutil.WriteFile(l.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write ledger %s: %w", l.path, err)
	}
	return nil
}

func hexSum(s [32]byte) string { return hex.EncodeToString(s[:]) }

// DefaultLedgerPath is where the API mode keeps its ledger:
// $XDG_STATE_HOME/retentiond/imports.json, else
// ~/.local/state/retentiond/imports.json.
func DefaultLedgerPath() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "retentiond", "imports.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory for the import ledger (use --ledger): %w", err)
	}
	return filepath.Join(home, ".local", "state", "retentiond", "imports.json"), nil
}
