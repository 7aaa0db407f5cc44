package audit

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"time"
)

// The audit witness (issue 19): signed checkpoints of the chain's head
// (seq, hash, time) that the daemon writes to its own log, which journald
// keeps apart from the data directory. Whoever can rewrite the audit files
// cannot reach those copies, so `retentiond audit verify --checkpoints`
// finds a cut-off end, a deleted file or a rewritten chain by comparing the
// chain with them.
//
// A checkpoint travels as one token without spaces or quotes,
//
//	rtdcp1.<base64url(JSON payload)>.<base64url(Ed25519 signature)>
//
// so that it reads back unchanged out of the text or the JSON log format,
// and out of `journalctl -o cat`.

// Signer signs checkpoints; *signing.Key is one.
type Signer interface {
	Sign(msg []byte) []byte
	Public() ed25519.PublicKey
}

// Checkpoint is a witnessed head of the chain.
type Checkpoint struct {
	Seq    int64     `json:"seq"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"` // lines, interval, start or shutdown
}

const (
	checkpointTag    = "rtdcp1"
	checkpointDomain = "retentiond-audit-checkpoint/1\n"
)

var checkpointRE = regexp.MustCompile(checkpointTag + `\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)`)

// Token encodes and signs c.
func (c Checkpoint) Token(s Signer) string {
	payload, _ := json.Marshal(c) // a struct of plain fields always encodes
	sig := s.Sign(append([]byte(checkpointDomain), payload...))
	return checkpointTag + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Checkpoint writes a signed checkpoint of the current head to the
// daemon's log; reason says why (see Checkpoint.Reason). Without a signer
// it does nothing.
func (l *Log) Checkpoint(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpointLocked(reason)
}

func (l *Log) checkpointLocked(reason string) {
	if l.signer == nil {
		return
	}
	c := Checkpoint{Seq: l.seq, Hash: l.head, Time: l.now().UTC(), Reason: reason}
	l.log.Info("audit checkpoint", "seq", c.Seq, "hash", c.Hash, "reason", reason, "checkpoint", c.Token(l.signer))
	l.metrics.checkpoints.Inc()
}

// RunCheckpoints writes a checkpoint every interval until ctx ends. A
// checkpoint is written even when no line was added: its time proves the
// head was still the same then, so lines cut off after it show.
func (l *Log) RunCheckpoints(ctx context.Context, interval time.Duration) {
	if interval <= 0 || l.signer == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Checkpoint("interval")
		}
	}
}

// ReadCheckpoints finds the checkpoint tokens in r (a daemon log in any
// format) and returns those signed by pub, in the order read, and how many
// tokens did not verify (forged, damaged, or signed by another key).
func ReadCheckpoints(r io.Reader, pub ed25519.PublicKey) (cps []Checkpoint, invalid int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		for _, m := range checkpointRE.FindAllSubmatch(sc.Bytes(), -1) {
			payload, e1 := base64.RawURLEncoding.DecodeString(string(m[1]))
			sig, e2 := base64.RawURLEncoding.DecodeString(string(m[2]))
			var c Checkpoint
			if e1 != nil || e2 != nil || !ed25519.Verify(pub, append([]byte(checkpointDomain), payload...), sig) ||
				json.Unmarshal(payload, &c) != nil {
				invalid++
				continue
			}
			cps = append(cps, c)
		}
	}
	if err := sc.Err(); err != nil {
		return cps, invalid, fmt.Errorf("read checkpoints: %w", err)
	}
	return cps, invalid, nil
}

// CheckpointResult is what VerifyCheckpoints found.
type CheckpointResult struct {
	Chain Result // the chain's own verification
	// Matched counts the checkpoints the chain confirms; Purged those that
	// lie in files a confirmed purge removed (they can no longer be
	// checked, and that is expected).
	Matched, Purged int
	// LastMatch is the newest checkpoint the chain still confirms; nil
	// when none does.
	LastMatch *Checkpoint
	// FirstBad is the oldest checkpoint the chain contradicts, and why;
	// nil when none does.
	FirstBad *Checkpoint
	Reason   string
}

// VerifyCheckpoints checks the chain in dir against checkpoints: each one
// must name a line of the chain with the same hash. A checkpoint beyond the
// chain's end means lines were cut off (or the files deleted); one whose
// hash differs means the chain was rewritten. A checkpoint older than the
// chain's start is accepted only when a purge removed its file, i.e. it
// was taken on a day before the anchor's purged_before.
func VerifyCheckpoints(dir string, cps []Checkpoint) (CheckpointResult, error) {
	hashes := make(map[int64]string)
	first := int64(0)
	res, err := VerifyWith(dir, VerifyOptions{onLine: func(seq int64, h string) {
		if first == 0 {
			first = seq
		}
		hashes[seq] = h
	}})
	out := CheckpointResult{Chain: res}
	if err != nil {
		return out, err
	}
	a, _ := readAnchor(os.DirFS(dir)) // a bad anchor is already in res.FirstBad
	cps = slices.Clone(cps)
	slices.SortStableFunc(cps, func(x, y Checkpoint) int { return cmp.Or(cmp.Compare(x.Seq, y.Seq), x.Time.Compare(y.Time)) })
	for i := range cps {
		c := &cps[i]
		reason := ""
		h, ok := hashes[c.Seq]
		switch {
		case c.Seq == 0:
			// Taken while the log was empty: nothing to compare.
			out.Matched++
			continue
		case ok && h == c.Hash:
			out.Matched++
			out.LastMatch = c
			continue
		case ok:
			reason = fmt.Sprintf("the chain's line %d has hash %s, the checkpoint of %s says %s: the chain was rewritten",
				c.Seq, h, c.Time.Format(time.RFC3339), c.Hash)
		case first > 0 && c.Seq < first && a != nil && dayOf(c.Time) < a.PurgedBefore:
			out.Purged++
			continue
		case first > 0 && c.Seq < first:
			reason = fmt.Sprintf("line %d (checkpoint of %s) is before the chain's first line %d, but no purge removed it: lines or files were deleted",
				c.Seq, c.Time.Format(time.RFC3339), first)
		case res.Lines == 0:
			reason = fmt.Sprintf("the checkpoint of %s names line %d, but the audit directory holds no line: the audit files were deleted",
				c.Time.Format(time.RFC3339), c.Seq)
		default:
			reason = fmt.Sprintf("the checkpoint of %s names line %d, but the chain ends at line %d: lines were cut off its end",
				c.Time.Format(time.RFC3339), c.Seq, res.HeadSeq)
		}
		if out.FirstBad == nil {
			out.FirstBad, out.Reason = c, reason
		}
	}
	return out, nil
}
