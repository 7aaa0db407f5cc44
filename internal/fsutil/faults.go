package fsutil

import (
	"strings"
	"sync"
)

// Op names a file-system effect an FS performs, so that a Faults function can
// choose which ones to fail. Reads (ReadFile, ReadDir, Stat) are not faulted:
// the failure semantics this layer tests are those of writes. Map is the
// exception, because a failed mapping (ENOMEM, the kernel's map count) is how
// opening a segment fails on a busy system.
type Op uint8

// The operations an FS performs.
const (
	OpOpen     Op = iota + 1 // open or create a file for writing (data, temp and lock files)
	OpWrite                  // write to an open file
	OpSync                   // fsync a file
	OpSyncDir                // fsync a directory
	OpRename                 // rename, including Commit's and Remove's renames
	OpRemove                 // remove a file or tree
	OpMkdir                  // create a directory
	OpTruncate               // change a file's size
	OpLock                   // take a file lock
	OpMap                    // map a file read-only (or read it into memory where there is no mmap)
)

var opNames = [...]string{"", "open", "write", "sync", "syncdir", "rename", "remove", "mkdir", "truncate", "lock", "map"}

func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return "op?"
}

// Faults decides, before an FS performs op on path, whether it fails: a
// non-nil error is returned instead (wrapped in an *fs.PathError, so
// errors.Is(err, syscall.ENOSPC) works as for a real failure). It is called
// from many goroutines at once.
type Faults func(op Op, path string) error

// ShortWrite is a fault that, returned by a Faults function for OpWrite,
// makes the write put the first half of its bytes into the file and then
// fail with Err: what a disk that fills up in the middle of a write does.
type ShortWrite struct{ Err error }

func (s *ShortWrite) Error() string { return "short write: " + s.Err.Error() }

// Unwrap lets errors.Is see the underlying error.
func (s *ShortWrite) Unwrap() error { return s.Err }

// Rule is one fault an Injector applies.
type Rule struct {
	Op   Op
	Path string // a substring of the path; "" matches every path
	Err  error
	// After lets this many matching calls succeed before the rule fails
	// calls; Times fails this many and then lets calls pass again (0: every
	// call until Clear).
	After, Times int

	seen, failed int
}

// Injector is a Faults built from rules that a test switches on and off while
// the code under test runs, from any goroutine.
type Injector struct {
	mu     sync.Mutex
	rules  []*Rule
	failed map[Op]int
}

// Add switches a rule on.
func (in *Injector) Add(r Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &r)
}

// Clear switches every rule off: the resources "come back".
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
}

// Failed returns how many calls of op the injector has failed so far.
func (in *Injector) Failed(op Op) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.failed[op]
}

// Faults applies the first matching rule. Its signature is Faults's.
func (in *Injector) Faults(op Op, path string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range in.rules {
		if r.Op != op || !strings.Contains(path, r.Path) {
			continue
		}
		r.seen++
		if r.seen <= r.After || (r.Times > 0 && r.failed >= r.Times) {
			continue
		}
		r.failed++
		if in.failed == nil {
			in.failed = make(map[Op]int)
		}
		in.failed[op]++
		return r.Err
	}
	return nil
}

// FS returns an FS whose operations pass through the injector.
func (in *Injector) FS() FS { return WithFaults(in.Faults) }
