package hold

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
)

// A hold placed on one node must keep its days on every node: the purge
// that destroys expired days in the shared bucket may run on any of them
// (one node at a time, under the lease), and each node destroys its own
// expired copies. So with a bucket, every active hold is mirrored to
// holds/<node>/<id>.json before it takes effect, removed from there before
// its release takes effect, and every purge reads all nodes' copies first
// (Refresh). docs/scale-out.md, "Legal holds across the cluster".

// mirrorTimeout bounds one bucket request of Add, Release or Refresh.
const mirrorTimeout = 30 * time.Second

// mirror writes h to the bucket (no-op without one).
func (r *Registry) mirror(h *Hold) error {
	if r.opts.Bucket == nil {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode hold: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	if _, err := r.opts.Bucket.Put(ctx, objstore.HoldKey(r.opts.Node, h.ID), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("copy the hold to the bucket, so every node keeps its days: %w", err)
	}
	return nil
}

// unmirror removes h's copy from the bucket (no-op without one).
func (r *Registry) unmirror(h *Hold) error {
	if r.opts.Bucket == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	if err := r.opts.Bucket.Delete(ctx, objstore.HoldKey(r.opts.Node, h.ID)); err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("remove the hold's copy from the bucket: %w", err)
	}
	return nil
}

// Refresh reads the other nodes' active holds from the bucket; HeldBy
// then counts them (their ids as "node/hold-N"). The purge calls it before
// it decides which days to destroy. On error the holds read last stay in
// force (never fewer holds than known), and the error says so.
func (r *Registry) Refresh(ctx context.Context) error {
	if r.opts.Bucket == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, mirrorTimeout)
	defer cancel()
	objs, err := r.opts.Bucket.List(ctx, objstore.HoldsPrefix)
	if err != nil {
		return fmt.Errorf("read the cluster's legal holds: %w", err)
	}
	var others []*Hold
	for _, o := range objs {
		node, id, ok := objstore.ParseHoldKey(o.Key)
		if !ok || node == r.opts.Node {
			continue
		}
		var buf bytes.Buffer
		if _, err := r.opts.Bucket.Get(ctx, o.Key, &buf); err != nil {
			if errors.Is(err, objstore.ErrNotFound) {
				continue // released meanwhile
			}
			return fmt.Errorf("read the cluster's legal holds: %w", err)
		}
		var h Hold
		if err := json.Unmarshal(buf.Bytes(), &h); err != nil {
			return fmt.Errorf("read the cluster's legal holds: %s: %w", o.Key, err)
		}
		if err := h.parse(); err != nil || h.ID != id {
			return fmt.Errorf("read the cluster's legal holds: %s: not a hold of id %s", o.Key, id)
		}
		if h.Active() {
			h.node = node
			others = append(others, &h)
		}
	}
	slices.SortFunc(others, func(a, b *Hold) int {
		if a.node != b.node {
			return strings.Compare(a.node, b.node)
		}
		return strings.Compare(a.ID, b.ID)
	})
	r.mu.Lock()
	r.cluster = others
	r.mu.Unlock()
	return nil
}
