package purge

import (
	"context"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/store"
)

// Holds says which days a legal hold keeps beyond their retention
// (internal/hold implements it). The purge never destroys a held day; it
// lists it in its report instead, and destroys it at the first run after
// the last hold on it is released.
type Holds interface {
	// HeldBy returns the ids of the holds that keep the UTC day holding
	// day; none means the day may be destroyed.
	HeldBy(day time.Time) []string
}

// clusterHolds is implemented by a Holds that also knows the holds placed
// on other nodes of a cluster (hold.Registry with a bucket): Refresh reads
// them, and HeldBy counts them from then on.
type clusterHolds interface {
	Refresh(ctx context.Context) error
}

// refreshHolds reads the cluster's holds before a run decides what to
// destroy. On error the holds read last stay in force; the bucket step is
// then skipped (see prepareRemote), the local step goes on.
func (s *Scheduler) refreshHolds(ctx context.Context) error {
	ch, ok := s.holds.(clusterHolds)
	if !ok {
		return nil
	}
	if err := ch.Refresh(ctx); err != nil {
		s.log.Warn("purge: the cluster's legal holds could not be read; the holds read last apply", "err", err)
		return err
	}
	return nil
}

// HeldDay is an expired day a run kept because of a legal hold.
type HeldDay struct {
	store.DayInfo
	Holds []string // the ids of the holds that keep it
}

// Trigger values: what started a run.
const (
	TriggerSchedule = "schedule" // purge.schedule
	TriggerStartup  = "startup"  // purge.on_start
	TriggerManual   = "manual"   // POST /api/v1/admin/purge (retentiond purge)
)

// splitHeld separates the expired days a hold keeps from those to destroy.
func splitHeld(h Holds, expired []store.DayInfo) (destroy []store.DayInfo, held []HeldDay) {
	if h == nil {
		return expired, nil
	}
	for _, d := range expired {
		if ids := h.HeldBy(d.Day); len(ids) > 0 {
			held = append(held, HeldDay{DayInfo: d, Holds: slices.Clone(ids)})
			continue
		}
		destroy = append(destroy, d)
	}
	return destroy, held
}

// oldestRecord returns the time of the oldest record of days, or zero.
func oldestRecord(days []store.DayInfo) time.Time {
	var oldest time.Time
	for _, d := range days {
		if d.Records > 0 && !d.MinTime.IsZero() && (oldest.IsZero() || d.MinTime.Before(oldest)) {
			oldest = d.MinTime
		}
	}
	return oldest
}
