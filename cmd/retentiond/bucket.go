package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/objstore"
)

// rangeCacheDir is where the range cache of remote segments lives in the
// data directory (wiped at every start: it is a cache).
const rangeCacheDir = "cache"

// remote is the daemon's object storage: the bucket, the range cache of
// remote segments, this node's name and the local disk kept for uploaded
// day files. A zero remote (no endpoint) keeps everything local.
type remote struct {
	bucket     objstore.Bucket
	cache      *objstore.Cache
	node       string
	localBytes int64
}

// openRemote sets up object_storage and cluster.node. It sends no request:
// a store that is down at start must not stop the daemon. object_storage.
// cache_bytes is split in two halves (docs/scale-out.md): uploaded day
// files kept on local disk, and the range cache. Credentials come from the
// configuration or the AWS_* variables (inside objstore) and are never
// logged.
func openRemote(cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (remote, error) {
	o := cfg.ObjectStorage
	node, err := cfg.Cluster.NodeName()
	if o.Endpoint == "" {
		// Local only: the node name is still what a cluster search calls
		// this node (the host name as it is when it makes no valid name).
		if err != nil {
			node = hostName()
		}
		return remote{node: node}, nil
	}
	if err != nil {
		return remote{}, err
	}
	b, err := objstore.New(objstore.Config{
		Endpoint:        o.Endpoint,
		Bucket:          o.Bucket,
		Prefix:          o.Prefix,
		Region:          o.Region,
		AccessKeyID:     o.AccessKeyID,
		SecretAccessKey: o.SecretAccessKey,
		CAFile:          o.CAFile,
	})
	if err != nil {
		return remote{}, fmt.Errorf("object_storage: %w", err)
	}
	half := int64(o.CacheBytes) / 2
	cache, err := objstore.NewCache(filepath.Join(cfg.DataDir, rangeCacheDir), half)
	if err != nil {
		return remote{}, fmt.Errorf("object_storage.cache_bytes: %w", err)
	}
	if err := metricsx.Register(reg, cache); err != nil {
		cache.Close()
		return remote{}, fmt.Errorf("object_storage: %w", err)
	}
	log.Info("object storage enabled", "store", b.String(), "node", node, "cache_bytes", int64(o.CacheBytes))
	return remote{bucket: objstore.Instrument(b, reg), cache: cache, node: node, localBytes: half}, nil
}

// Close releases the range cache.
func (r remote) Close() error {
	if r.cache == nil {
		return nil
	}
	return r.cache.Close()
}
