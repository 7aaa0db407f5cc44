package purge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// Store is what the purge needs from the data directory; *store.Store
// satisfies it. DeleteDay must destroy every copy of the day (day files, WAL
// records, temp files) crash-safely and must not delete a day under a
// running search. It returns what was deleted, or a zero DayInfo when the day
// did not exist.
type Store interface {
	Days() []store.DayInfo
	DeleteDay(ctx context.Context, day time.Time) (store.DayInfo, error)
}

// Purgeable is other data with its own retention that is purged on the same
// schedule, such as old audit log files. Purge destroys what has expired at
// now and says what it destroyed.
type Purgeable interface {
	Purge(ctx context.Context, now time.Time) (PurgeStats, error)
}

// PurgeFunc adapts a function to Purgeable.
type PurgeFunc func(ctx context.Context, now time.Time) (PurgeStats, error)

// Purge calls f.
func (f PurgeFunc) Purge(ctx context.Context, now time.Time) (PurgeStats, error) { return f(ctx, now) }

// PurgeStats is what a Purgeable destroyed in one run.
type PurgeStats struct {
	Name  string `json:"name"`  // fixed name, used as a metric label: "audit"
	Items int64  `json:"items"` // files, entries or whatever the purgeable counts
	Bytes int64  `json:"bytes"`
}

// Errors a caller distinguishes with errors.Is.
var (
	// ErrRefused means more days have expired than MaxDaysPerRun allows and
	// nothing was destroyed: the clock may have jumped forward.
	ErrRefused = errors.New("purge refused")
	// ErrStopped means the scheduler has been stopped.
	ErrStopped = errors.New("purge scheduler stopped")
)

// Options configure a Scheduler.
type Options struct {
	// Policy decides what has expired; its Retention must be set.
	Policy Policy
	// Store holds the days.
	Store Store
	// Extra are purged after the days in every run (not in dry runs).
	Extra []Purgeable
	// Schedule is the cron spec (purge.schedule) in policy.ParseSchedule's
	// dialect; empty means policy.DefaultSchedule.
	Schedule string
	// MaxDaysPerRun refuses a run that would destroy more days than this,
	// because a clock that jumped forward could otherwise destroy a lot of
	// data at once. 0 means no limit (the default). The start-up run is
	// exempt when StartupIgnoresLimit is set, and an operator can override
	// the guard for one run with RunOptions.Force.
	MaxDaysPerRun int
	// StartupIgnoresLimit exempts the start-up run from MaxDaysPerRun, so
	// that the catch-up after long downtime is not refused.
	StartupIgnoresLimit bool
	// DataDir, when set, adds the gauges retentiond_data_dir_free_bytes and
	// retentiond_data_dir_size_bytes for the file system holding it.
	DataDir string
	// Registerer receives the metrics; nil means a private registry (the
	// global default registry is never used).
	Registerer prometheus.Registerer
	// Logger gets one line per run; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject a simulated one.
	Now func() time.Time
	// Holds, when set, keeps the days under a legal hold (see Holds).
	Holds Holds
	// OnReport, when set, receives the report of every real run (not dry
	// runs), whatever its result, before Run returns: the daemon signs and
	// stores it (internal/report).
	OnReport func(Report)
	// Bucket, when set, is the object store shared by the cluster's nodes:
	// every real run also destroys the expired days in it, every object of
	// every node and every version, one node at a time (see remote.go and
	// docs/retention.md). Nil: local disk only.
	Bucket objstore.Bucket
	// Node is this node's name (cluster.node), written into the purge
	// lease and run record; required with Bucket.
	Node string
	// LeaseTTL is how long the purge lease is valid without renewal; 0
	// means DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// RunOptions select the kind of run.
type RunOptions struct {
	// DryRun only lists what would be destroyed.
	DryRun bool
	// Force ignores MaxDaysPerRun for this run (an operator's explicit
	// decision after checking the clock).
	Force bool
	// Startup marks the start-up catch-up run.
	Startup bool
	// scheduled marks a run started by the cron schedule.
	scheduled bool
}

// Report says what a run destroyed, or for a dry run or a refused run what
// it would have destroyed.
type Report struct {
	DryRun    bool
	Startup   bool
	Trigger   string // TriggerSchedule, TriggerStartup or TriggerManual
	Result    string // ResultSuccess, ResultFailure or ResultRefused; empty for a dry run
	Now       time.Time
	Retention Retention
	// Days are the destroyed (or, for a dry or refused run, expired) days,
	// oldest first.
	Days     []store.DayInfo
	Records  int64
	Bytes    int64
	Duration time.Duration
	// Extra holds one entry per extra purgeable that ran.
	Extra []PurgeStats
	// NextExpiry is when the next stored day that had not expired at Now
	// will expire, i.e. when the next run has work to do; zero when no such
	// day is stored.
	NextExpiry time.Time
	// Held are the expired days a legal hold kept, oldest first.
	Held []HeldDay
	// OldestBefore and OldestAfter are the oldest stored record before and
	// after the run (held days included); zero when the store held none.
	OldestBefore, OldestAfter time.Time
	// Remote is the bucket step of the run; nil without a bucket (and in
	// dry runs).
	Remote *RemoteReport
}

// Scheduler runs the purge on a cron schedule, at start-up and on demand,
// never two runs at once, and keeps the purge metrics. It depends only on
// the Store's day list and DeleteDay, not on the WAL or on ingest, so that
// a broken write path cannot stop the destruction of expired data.
type Scheduler struct {
	policy  Policy
	store   Store
	holds   Holds
	report  func(Report)
	extra   []Purgeable
	maxDays int
	startOK bool
	now     func() time.Time
	log     *slog.Logger
	m       *metrics
	cron    *cron.Cron
	spec    string

	// sem holds one token; a run takes it, so runs never overlap. A
	// scheduled run that finds it taken is skipped; a manual or start-up
	// run waits for it.
	sem chan struct{}
	// base is cancelled by Stop, which aborts a run that is waiting for a
	// search to release a day (the day stays hidden and is finished by the
	// next run).
	base   context.Context
	cancel context.CancelFunc

	stopOnce   sync.Once
	stoppedCtx context.Context

	last atomic.Pointer[lastRun] // the previous real run's report (Status)

	mu      sync.Mutex
	lastRun time.Time // clock reading at the previous real run
	stopped bool

	bucket   objstore.Bucket // nil: local disk only
	node     string
	leaseTTL time.Duration
	// versioned is the bucket's versioning as last checked: 0 not yet,
	// 1 unversioned, 2 versioned; a change is logged.
	versioned atomic.Int32
}

// NewScheduler checks the options, registers the metrics and returns a
// scheduler that has not started; call Start for the schedule.
func NewScheduler(opts Options) (*Scheduler, error) {
	if opts.Store == nil {
		return nil, errors.New("purge: no store")
	}
	if err := opts.Policy.Retention.Validate(); err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	if opts.Bucket != nil {
		if err := objstore.ValidNode(opts.Node); err != nil {
			return nil, fmt.Errorf("purge: a bucket needs this node's name: %w", err)
		}
	}
	if opts.LeaseTTL < 0 {
		return nil, fmt.Errorf("purge: lease ttl %s: must be positive", opts.LeaseTTL)
	}
	if opts.MaxDaysPerRun < 0 {
		return nil, fmt.Errorf("purge: max days per run %d: must be 0 (no limit) or more", opts.MaxDaysPerRun)
	}
	spec := cmp.Or(opts.Schedule, policy.DefaultSchedule)
	sched, err := policy.ParseSchedule(spec)
	if err != nil {
		return nil, fmt.Errorf("purge schedule: %w; %s", err, policy.ScheduleHint)
	}
	s := &Scheduler{
		policy:  opts.Policy,
		store:   opts.Store,
		holds:   opts.Holds,
		report:  opts.OnReport,
		extra:   opts.Extra,
		maxDays: opts.MaxDaysPerRun,
		startOK: opts.StartupIgnoresLimit,
		now:     opts.Now,
		log:     cmp.Or(opts.Logger, slog.Default()),
		spec:    spec,
		sem:     make(chan struct{}, 1),

		bucket:   opts.Bucket,
		node:     opts.Node,
		leaseTTL: cmp.Or(opts.LeaseTTL, DefaultLeaseTTL),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.m, err = newMetrics(reg, newStateCollector(s.store, s.policy, s.holds, s.now, opts.DataDir)); err != nil {
		return nil, fmt.Errorf("purge: register metrics: %w", err)
	}
	cl := cronLogger{s.log}
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cl),
		cron.WithChain(cron.SkipIfStillRunning(cl)))
	s.cron.Schedule(sched, cron.FuncJob(s.scheduledRun))
	return s, nil
}

// Start starts the schedule. It does not run a purge by itself; the daemon
// calls RunStartup first (purge.on_start).
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.cron.Start()
	s.log.Info("purge scheduled", "schedule", s.spec, "retention", s.policy.Retention.String(),
		"next", s.Next().Format(time.RFC3339))
}

// Next returns the time of the next scheduled run, or zero if the schedule
// has not started.
func (s *Scheduler) Next() time.Time {
	for _, e := range s.cron.Entries() {
		return e.Next
	}
	return time.Time{}
}

// Stop stops the schedule, cancels a run that is waiting for a search, and
// refuses new runs. The returned context is done once no run is in flight.
// Calling Stop again returns the same context.
func (s *Scheduler) Stop() context.Context {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		cronDone := s.cron.Stop()
		s.cancel()
		ctx, done := context.WithCancel(context.Background())
		s.stoppedCtx = ctx
		go func() {
			<-cronDone.Done()
			// Taking the token for good waits for a manual or start-up run
			// and keeps any later one out.
			s.sem <- struct{}{}
			done()
		}()
	})
	return s.stoppedCtx
}

// scheduledRun is the cron job. If a run is already in progress (a manual
// one, or the start-up catch-up), this one is skipped: the next run decides
// from the data again, so nothing is lost by skipping.
func (s *Scheduler) scheduledRun() {
	select {
	case s.sem <- struct{}{}:
	default:
		s.log.Warn("purge run skipped: another purge is still running")
		return
	}
	defer func() { <-s.sem }()
	if s.isStopped() {
		return
	}
	// The error is already logged and counted by execute.
	_, _ = s.execute(s.base, RunOptions{scheduled: true})
}

// RunNow purges now (or, with dryRun, reports what would be purged). It
// waits for a run in progress to finish rather than overlapping it.
func (s *Scheduler) RunNow(ctx context.Context, dryRun bool) (Report, error) {
	return s.Run(ctx, RunOptions{DryRun: dryRun})
}

// RunStartup is the start-up catch-up run: the daemon calls it before it
// reports ready, so that no search sees a day that expired during downtime.
func (s *Scheduler) RunStartup(ctx context.Context) (Report, error) {
	return s.Run(ctx, RunOptions{Startup: true})
}

// Run runs a purge with the given options, waiting for a run in progress.
func (s *Scheduler) Run(ctx context.Context, o RunOptions) (Report, error) {
	if s.isStopped() {
		return Report{}, ErrStopped
	}
	if o.DryRun {
		// A dry run changes nothing, so it needs no turn.
		return s.dryRun(), nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return Report{}, fmt.Errorf("purge: waiting for the running purge: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.isStopped() {
		return Report{}, ErrStopped
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	rep, err := s.execute(ctx, o)
	s.last.Store(&lastRun{rep, err})
	return rep, err
}

func (s *Scheduler) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Plan lists the stored days that have expired at now, oldest first: what a
// run at now would destroy.
func (s *Scheduler) Plan(now time.Time) []store.DayInfo {
	return plan(s.policy, s.store.Days(), now)
}

// plan filters days to the expired ones, oldest first.
func plan(p Policy, days []store.DayInfo, now time.Time) []store.DayInfo {
	var out []store.DayInfo
	for _, d := range days {
		if p.Expired(d.Day, now) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b store.DayInfo) int { return a.Day.Compare(b.Day) })
	return out
}

// nextExpiry returns when the oldest of days that has not expired at now
// will expire, or zero.
func (p Policy) nextExpiry(days []store.DayInfo, now time.Time) time.Time {
	var next time.Time
	for _, d := range days {
		if p.Expired(d.Day, now) {
			continue
		}
		if e := p.ExpiresAt(d.Day); next.IsZero() || e.Before(next) {
			next = e
		}
	}
	return next
}

func (s *Scheduler) dryRun() Report {
	start := time.Now()
	now := s.now().UTC()
	days := s.store.Days()
	rep := Report{DryRun: true, Now: now, Retention: s.policy.Retention}
	if err := s.refreshHolds(context.Background()); err != nil {
		s.log.Warn("purge dry run: the cluster's legal holds could not be read; the holds read last apply", "err", err)
	}
	rep.Days, rep.Held = splitHeld(s.holds, plan(s.policy, days, now))
	for _, d := range rep.Days {
		rep.Records += d.Records
		rep.Bytes += d.Bytes
	}
	rep.NextExpiry = s.policy.nextExpiry(days, now)
	rep.Duration = time.Since(start)
	return rep
}

// execute is one real run; the caller holds the token. Every real run
// leaves its report, a refused or failed one too: the report is the record
// of what was and was not destroyed.
func (s *Scheduler) execute(ctx context.Context, o RunOptions) (Report, error) {
	rep, err := s.run(ctx, o)
	rep.OldestAfter = oldestRecord(s.store.Days())
	if s.report != nil {
		s.report(rep)
	}
	return rep, err
}

func (s *Scheduler) run(ctx context.Context, o RunOptions) (Report, error) {
	start := time.Now()
	now := s.now().UTC()
	s.checkClock(now)
	rep := Report{Startup: o.Startup, Trigger: TriggerManual, Now: now, Retention: s.policy.Retention}
	switch {
	case o.Startup:
		rep.Trigger = TriggerStartup
	case o.scheduled:
		rep.Trigger = TriggerSchedule
	}
	days := s.store.Days()
	holdsErr := s.refreshHolds(ctx)
	expired, held := splitHeld(s.holds, plan(s.policy, days, now))
	rep.Held = held
	rep.NextExpiry = s.policy.nextExpiry(days, now)
	rep.OldestBefore = oldestRecord(days)

	// The bucket is prepared before anything is destroyed, so that the
	// guard below counts its expired days too: a clock that jumped forward
	// must not empty the bucket either.
	var remote *remoteStep
	if s.bucket != nil {
		remote = s.prepareRemote(ctx, now, holdsErr)
		defer func() { remote.release(ctx) }()
	}
	if n := countExpired(expired, remote); s.maxDays > 0 && n > s.maxDays && !o.Force && !(o.Startup && s.startOK) {
		rep.Result = ResultRefused
		rep.Days = expired
		for _, d := range expired {
			rep.Records += d.Records
			rep.Bytes += d.Bytes
		}
		rep.Duration = time.Since(start)
		s.m.runs.WithLabelValues(ResultRefused).Inc()
		s.m.duration.Observe(rep.Duration.Seconds())
		rep.Remote = remote.report()
		err := fmt.Errorf("%w: %d days have expired, more than purge.max_days_per_run (%d); nothing was destroyed. "+
			"If the clock is right, raise the limit or run 'retentiond purge --force' once",
			ErrRefused, n, s.maxDays)
		attrs := []any{"days", n, "max_days_per_run", s.maxDays, "startup", o.Startup, "now", now.Format(time.RFC3339)}
		if len(expired) > 0 {
			attrs = append(attrs, "oldest_day", record.DayString(expired[0].Day),
				"newest_day", record.DayString(expired[len(expired)-1].Day))
		}
		if remote != nil {
			attrs = append(attrs, remote.logAttrs()...)
		}
		s.log.Error("purge refused", attrs...)
		return rep, err
	}

	var errs []error
	for _, d := range expired {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("purge stopped before day %s: %w", record.DayString(d.Day), err))
			break
		}
		info, err := s.store.DeleteDay(ctx, d.Day)
		// A DeleteDay error may still come with the day's files removed
		// (the WAL clean-up after it failed); count what was destroyed.
		if !info.Day.IsZero() {
			rep.Days = append(rep.Days, info)
			rep.Records += info.Records
			rep.Bytes += info.Bytes
			s.m.days.Inc()
			s.m.records.Add(float64(info.Records))
			s.m.bytes.Add(float64(info.Bytes))
		}
		if err != nil {
			// Go on with the other expired days: one day held by a stuck
			// search must not keep the rest beyond their retention.
			errs = append(errs, err)
		}
	}
	if remote != nil {
		// After the local copies: an unreachable store must not keep this
		// node's expired days on its disk.
		remote.destroy(ctx)
		remote.release(ctx)
		rep.Remote = remote.report()
		if err := remote.err(); err != nil {
			errs = append(errs, err)
			s.m.remote.failing.Set(1)
		} else {
			s.m.remote.failing.Set(0)
		}
	}
	for i, e := range s.extra {
		st, err := e.Purge(ctx, now)
		st.Name = cmp.Or(st.Name, fmt.Sprintf("extra%d", i))
		rep.Extra = append(rep.Extra, st)
		s.m.extraItems.WithLabelValues(st.Name).Add(float64(st.Items))
		if err != nil {
			s.m.extraFailures.WithLabelValues(st.Name).Inc()
			errs = append(errs, fmt.Errorf("purge %s: %w", st.Name, err))
		}
	}
	rep.Duration = time.Since(start)
	s.m.duration.Observe(rep.Duration.Seconds())
	err := errors.Join(errs...)

	attrs := []any{"days", len(rep.Days), "records", rep.Records, "bytes", rep.Bytes,
		"duration", rep.Duration.Round(time.Millisecond).String(), "startup", o.Startup, "forced", o.Force}
	if len(rep.Days) > 0 {
		attrs = append(attrs, "oldest_day", record.DayString(rep.Days[0].Day),
			"newest_day", record.DayString(rep.Days[len(rep.Days)-1].Day))
	}
	var keyIDs []string
	for _, d := range rep.Days {
		if d.KeyID != "" {
			keyIDs = append(keyIDs, d.KeyID)
		}
	}
	if len(keyIDs) > 0 {
		// Ids only: they name the destroyed day keys, never hold key material.
		attrs = append(attrs, "keys_destroyed", len(keyIDs), "key_ids", strings.Join(keyIDs, ","))
	}
	for _, st := range rep.Extra {
		attrs = append(attrs, st.Name+"_items", st.Items)
	}
	if len(rep.Held) > 0 {
		attrs = append(attrs, "held_days", len(rep.Held), "oldest_held_day", record.DayString(rep.Held[0].Day))
	}
	if !rep.NextExpiry.IsZero() {
		attrs = append(attrs, "next_expiry", rep.NextExpiry.Format(time.RFC3339))
	}
	if remote != nil {
		attrs = append(attrs, remote.logAttrs()...)
	}
	if err != nil {
		rep.Result = ResultFailure
		s.m.runs.WithLabelValues(ResultFailure).Inc()
		s.log.Error("purge failed", append(attrs, "err", err)...)
		return rep, err
	}
	rep.Result = ResultSuccess
	s.m.runs.WithLabelValues(ResultSuccess).Inc()
	s.m.lastSuccess.Set(unixSeconds(now))
	s.log.Info("purge finished", attrs...)
	return rep, nil
}

// countExpired is the number of distinct expired, unheld days of the run:
// the local ones and those listed in the bucket.
func countExpired(local []store.DayInfo, remote *remoteStep) int {
	if remote == nil {
		return len(local)
	}
	seen := map[int64]bool{}
	for _, d := range local {
		seen[d.Day.Unix()] = true
	}
	for _, d := range remote.expired {
		seen[d.Unix()] = true
	}
	return len(seen)
}

// checkClock counts and logs a clock that reads earlier than at the previous
// run. The run still proceeds: an earlier clock only makes fewer days
// expired, so it can delay destruction but never bring it forward.
func (s *Scheduler) checkClock(now time.Time) {
	s.mu.Lock()
	last := s.lastRun
	s.lastRun = now
	s.mu.Unlock()
	if !last.IsZero() && now.Before(last) {
		s.m.clockSkew.Inc()
		s.log.Warn("clock went backwards since the previous purge run; purging with the current clock",
			"previous", last.Format(time.RFC3339Nano), "now", now.Format(time.RFC3339Nano),
			"behind", last.Sub(now).String())
	}
}

// cronLogger sends the cron library's messages to slog. Its routine messages
// (wake-ups, schedules) are debug noise; its errors are not.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("purge cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("purge cron: "+msg, append(kv, "err", err)...)
}
