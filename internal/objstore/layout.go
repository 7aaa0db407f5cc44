package objstore

// The bucket layout (docs/scale-out.md shows it whole):
//
//	<prefix>days/<YYYY-MM-DD>/<node>/<segment file name>   one closed day of one node
//	<prefix>leases/purge                                   the purge lease (If-None-Match: *)
//	<prefix>purges/<YYYY-MM-DD>                            a purge run's record, by its cutoff day
//
// A day is one prefix, so that the purge destroys it with one DeleteAll and
// proves it gone with one listing. The node is a path element of its own so
// that a node name can never be the prefix of another's objects.
// The functions that build and parse these keys are the only place the
// layout is written (store, search and purge call them).

import (
	"fmt"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// The top-level prefixes of the layout.
const (
	daysDir   = "days/"
	leaseKey  = "leases/purge"
	purgesDir = "purges/"
)

// MaxNodeLen is the longest node name, in bytes. It keeps keys far below
// S3's 1024-byte limit whatever the prefix and file name.
const MaxNodeLen = 64

// maxFileLen bounds a segment file name (the store's names are ~30 bytes).
const maxFileLen = 255

// DayPrefix is the prefix every object of day (its UTC day) lives under,
// "days/2026-01-02/": the unit the purge deletes and a search lists.
func DayPrefix(day time.Time) string {
	return daysDir + record.DayString(day) + "/"
}

// SegmentKey is the key of one segment file of node for day:
// "days/<YYYY-MM-DD>/<node>/<file>". node must pass ValidNode and file be a
// path element by the same rule (the config check and the store's file
// names guarantee both); anything else is a programming error and panics,
// because a key that does not parse back would be invisible to search and
// purge.
func SegmentKey(day time.Time, node, file string) string {
	if err := ValidNode(node); err != nil {
		panic(fmt.Sprintf("objstore.SegmentKey: %v", err))
	}
	if err := validElement("segment file name", file, maxFileLen); err != nil {
		panic(fmt.Sprintf("objstore.SegmentKey: %v", err))
	}
	return DayPrefix(day) + node + "/" + file
}

// ParseSegmentKey splits a key written by SegmentKey (relative to the
// bucket prefix, as List returns it) into its day, node and file name. ok
// is false for any other key, so that a listing can skip foreign objects.
func ParseSegmentKey(key string) (day time.Time, node, file string, ok bool) {
	rest, found := strings.CutPrefix(key, daysDir)
	if !found {
		return time.Time{}, "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return time.Time{}, "", "", false
	}
	d, err := record.ParseDay(parts[0])
	if err != nil || record.DayString(d) != parts[0] {
		return time.Time{}, "", "", false
	}
	if ValidNode(parts[1]) != nil || validElement("segment file name", parts[2], maxFileLen) != nil {
		return time.Time{}, "", "", false
	}
	return d, parts[1], parts[2], true
}

// ValidNode checks a node name (cluster.node): it is a path element of
// every key the node writes, so it is non-empty, at most MaxNodeLen bytes
// of [A-Za-z0-9._-], and not "." or "..".
func ValidNode(name string) error {
	return validElement("node name", name, MaxNodeLen)
}

// validElement is the one rule for a path element of a key.
func validElement(what, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > maxLen:
		return fmt.Errorf("%s is %d bytes, at most %d allowed", what, len(s), maxLen)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q is not a path element", what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s %q: byte %d is not one of [A-Za-z0-9._-]", what, record.Shorten(s), i)
		}
	}
	return nil
}

// LeaseKey is the key of the purge lease: one node at a time holds it,
// created with PutIfAbsent.
func LeaseKey() string { return leaseKey }

// PurgeRunKey is the key recording a purge run by its cutoff day
// ("purges/<YYYY-MM-DD>"): a node that finds it knows another node already
// ran that purge, and skips it.
func PurgeRunKey(cutoff time.Time) string {
	return purgesDir + record.DayString(cutoff)
}

// HoldsPrefix is where every node mirrors its active legal holds
// ("holds/<node>/<id>.json"), so that the purge of any node, and above all
// the one that destroys expired days in the shared bucket, keeps a day
// that a hold placed on another node covers.
const HoldsPrefix = "holds/"

// HoldKey is the key of node's hold id.
func HoldKey(node, id string) string {
	if err := ValidNode(node); err != nil {
		panic(fmt.Sprintf("objstore.HoldKey: %v", err))
	}
	if err := validElement("hold id", id, MaxNodeLen); err != nil {
		panic(fmt.Sprintf("objstore.HoldKey: %v", err))
	}
	return HoldsPrefix + node + "/" + id + ".json"
}

// ParseHoldKey splits a key written by HoldKey.
func ParseHoldKey(key string) (node, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, HoldsPrefix)
	if !ok {
		return "", "", false
	}
	node, file, ok := strings.Cut(rest, "/")
	id, ok2 := strings.CutSuffix(file, ".json")
	if !ok || !ok2 || ValidNode(node) != nil || validElement("hold id", id, MaxNodeLen) != nil {
		return "", "", false
	}
	return node, id, true
}
