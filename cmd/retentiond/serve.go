package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/buildinfo"
	"github.com/retentiond/retentiond/internal/cases"
	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/erasure"
	"github.com/retentiond/retentiond/internal/evidence"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/hold"
	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/ingest"
	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/report"
	"github.com/retentiond/retentiond/internal/search"
	"github.com/retentiond/retentiond/internal/server"
	"github.com/retentiond/retentiond/internal/signing"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/ui"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	var cfgFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: ingest, search API, scheduled purge",
		Long: `Run the retentiond daemon.

Without --config it reads /etc/retentiond/retentiond.yaml, then ./retentiond.yaml, and otherwise runs on
embedded defaults: data in ./data, HTTP on 127.0.0.1:8080, syslog UDP and TCP on 127.0.0.1:5514,
retention 2y. Every key can be overridden with a RETENTIOND_* environment variable
(see config.example.yaml).

Start-up order: take the data directory lock, recover (WAL replay), run the start-up purge,
then report ready (/readyz 200, systemd READY=1). SIGTERM or SIGINT stops accepting input,
finishes in-flight batches, flushes, fsyncs and exits 0. SIGHUP (systemctl reload) re-reads the
configuration and applies auth.tokens and ingest.allow; other changed keys are logged as needing
a restart. If a WAL write or fsync fails, /readyz answers 503 and the daemon exits non-zero
10 seconds later, to be restarted (the WAL replays).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDaemon(ctx, cfg, os.Stderr)
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "config file (default: /etc/retentiond/retentiond.yaml, then ./retentiond.yaml, else embedded defaults)")
	return cmd
}

// storeFailedExitDelay is how long the daemon keeps running after its store
// failed before it exits non-zero for the service manager to restart it (the
// restart replays the WAL, the only safe recovery after a failed fsync).
// Meanwhile ingest gets 503, /readyz says why and a scrape can see
// retentiond_store_failed; longer would only lengthen the outage.
const storeFailedExitDelay = 10 * time.Second

// daemonHooks are what tests change about a daemon; the zero value is
// production.
type daemonHooks struct {
	fs              fsutil.FS     // file system of the store and the audit log
	failedExitDelay time.Duration // 0: storeFailedExitDelay
}

// runDaemon runs until ctx is cancelled (a signal), then shuts down in the
// reverse order of start-up so that nothing accepted is lost. If the store
// fails (a WAL write or fsync error) it returns an error after
// storeFailedExitDelay, so the process exits non-zero and systemd's
// Restart=on-failure restarts it.
func runDaemon(ctx context.Context, cfg *config.Config, logOut *os.File) error {
	return runDaemonWith(ctx, cfg, logOut, daemonHooks{})
}

func runDaemonWith(ctx context.Context, cfg *config.Config, logOut *os.File, hooks daemonHooks) error {
	// Catch SIGHUP first: its default action kills the process. A reload
	// asked for during start-up is applied once the daemon is ready.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log := cfg.Log.NewLogger(logOut)
	slog.SetDefault(log)
	log.Info("starting retentiond", "version", buildinfo.Get().Version, "config", cfg.Source(),
		"data_dir", cfg.DataDir, "retention", cfg.Retention)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(reg)

	policy := purge.Policy{Retention: cfg.Retention}

	adaptLimit := setMemoryLimit(int64(cfg.Storage.HeadMaxBytes), log)
	ring, err := openKeyRing(cfg)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	if ring != nil {
		log.Info("encryption at rest enabled", "key_dir", cfg.KeyDir(), "master_key_id", ring.MasterID().String())
	}
	rem, err := openRemote(cfg, reg, log)
	if err != nil {
		return err
	}
	defer rem.Close()
	st, err := store.Open(cfg.DataDir, store.Options{
		HeadMaxBytes:    int64(cfg.Storage.HeadMaxBytes),
		FlushInterval:   cfg.Storage.FlushInterval,
		MergeGrace:      cfg.Storage.MergeGrace,
		WALSegmentBytes: int64(cfg.Storage.WALSegmentBytes),
		BlockRows:       cfg.Storage.BlockRows,
		ReaderGrace:     cfg.Purge.ReaderGrace,
		Logger:          log.With("component", "store"),
		Registerer:      reg,
		FS:              hooks.fs,
		Keys:            ring,
		Bucket:          rem.bucket,
		Node:            rem.node,
		Cache:           rem.cache,
		LocalCacheBytes: rem.localBytes,
		ListInterval:    cfg.ObjectStorage.ListInterval,
	})
	if err != nil {
		return err
	}
	storeClosed := false
	defer func() {
		if !storeClosed {
			st.Close()
		}
	}()
	if adaptLimit {
		limitCtx, stopLimit := context.WithCancel(ctx)
		defer stopLimit()
		go adaptMemoryLimit(limitCtx, int64(cfg.Storage.HeadMaxBytes), st.MemoryInUse)
	}

	authn, err := auth.New(auth.Options{
		Tokens:      authTokens(cfg),
		IngestAllow: cfg.Ingest.AllowPrefixes(),
		Logger:      log.With("component", "auth"),
		Registerer:  reg,
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if authn.DevMode() {
		log.Warn("no API tokens configured: development mode, the API answers loopback clients only; create tokens with 'retentiond token create'")
	}
	// The daemon's one signing key: reports, audit checkpoints.
	signKey, err := signing.LoadOrCreate(cfg.DataDir, hooks.fs)
	if err != nil {
		return err
	}
	log.Info("signing key", "fingerprint", signing.Fingerprint(signKey.Public()))
	auditLog, err := audit.Open(cfg.AuditPath(), audit.Options{Logger: log.With("component", "audit"), Registerer: reg, FS: hooks.fs,
		Signer: signKey, CheckpointLines: cfg.Audit.CheckpointLines})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer auditLog.Close()
	// The witness: a checkpoint at start, on a timer, and at shutdown (the
	// deferred one runs before the log closes).
	auditLog.Checkpoint("start")
	defer auditLog.Checkpoint("shutdown")
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	defer stopCheckpoints()
	go auditLog.RunCheckpoints(cpCtx, cfg.Audit.CheckpointInterval)

	reports, err := report.OpenDir(filepath.Join(cfg.DataDir, report.DirName), signKey,
		report.DirOptions{FS: hooks.fs, Logger: log.With("component", "reports"), Registerer: reg})
	if err != nil {
		return err
	}
	caseReg, err := cases.Open(cases.Options{
		Dir:            filepath.Join(cfg.DataDir, "cases"),
		Log:            auditLog,
		FS:             hooks.fs,
		Logger:         log.With("component", "cases"),
		Registerer:     reg,
		DefaultExpires: cfg.Cases.DefaultExpires,
		MaxExpires:     cfg.Cases.MaxExpires,
		RequireCase:    cfg.Search.RequireCase,
		DevMode:        authn.DevMode,
	})
	if err != nil {
		return fmt.Errorf("open case registry: %w", err)
	}
	// Every guarded endpoint consults the registry before it runs.
	auditLog.SetCaseCheck(caseReg.Check)
	switch {
	case !cfg.Search.RequireCase:
		log.Warn("search.require_case is false: searches may name any case id as free text; only cases in the registry are enforced")
	case authn.DevMode():
		log.Warn("development mode: searches may name any case id as free text; once tokens are configured every search needs an approved case (search.require_case)")
	}
	caseCtx, stopCases := context.WithCancel(context.Background())
	defer stopCases()
	go caseReg.Run(caseCtx, time.Minute)

	// A hold names a case of the registry that is pending or approved; an
	// unregistered id passes only where searches accept one (development
	// mode, search.require_case false), by the rule of cases.Check.
	holds, err := hold.Open(filepath.Join(cfg.DataDir, hold.DirName), hold.Options{Audit: auditLog, FS: hooks.fs,
		Bucket: rem.bucket, Node: rem.node,
		Logger: log.With("component", "hold"), Registerer: reg, CaseCheck: func(id string) error {
			c, ok := caseReg.Get(id)
			switch {
			case !ok && (!cfg.Search.RequireCase || authn.DevMode()):
				return nil
			case !ok:
				return errors.New("not in the case registry ('retentiond case open')")
			}
			if st := c.StateAt(time.Now()); st != cases.StatePending && st != cases.StateApproved {
				return fmt.Errorf("the case is %s", st)
			}
			return nil
		}})
	if err != nil {
		return fmt.Errorf("open legal holds: %w", err)
	}
	var eraseCluster *erasure.Cluster
	if len(cfg.Cluster.Peers) > 0 {
		// Every node erases its own data (and objects): an erasure asked
		// of this node is asked of every peer too (docs/scale-out.md).
		eraseCluster = &erasure.Cluster{URLs: cfg.Cluster.Peers, Token: cfg.Cluster.Token, Node: st.Node()}
	}
	eraser, err := erasure.New(cfg.DataDir, erasure.Options{Store: st, Audit: auditLog, Reports: reports, Holds: holds,
		Cluster: eraseCluster, Node: st.Node(), FS: hooks.fs, Logger: log.With("component", "erasure")})
	if err != nil {
		return err
	}

	ingestOpts := ingest.Options{
		Sink:         st,
		Admitter:     ingest.Admit(st),
		MaxBodyBytes: int64(cfg.Ingest.MaxBodyBytes),
		MaxLineBytes: int(cfg.Ingest.MaxLineBytes),
		TimeWindow: func(now time.Time) (time.Time, time.Time) {
			return policy.IngestWindow(now, cfg.Ingest.MaxFuture)
		},
		ElasticProductHeader: cfg.Ingest.ElasticProductHeader,
		Logger:               log.With("component", "ingest"),
		Registerer:           reg,
	}
	ingestOpts.MaxConcurrent = cfg.Ingest.MaxConcurrentRequests
	ingestOpts.QueueTimeout = cfg.Ingest.QueueTimeout
	ingestH := ingest.NewHandler(ingestOpts)
	var peers *search.Peers
	if len(cfg.Cluster.Peers) > 0 {
		peers = search.NewPeers(search.PeersOptions{URLs: cfg.Cluster.Peers, Token: cfg.Cluster.Token, Node: st.Node(),
			Timeout: cfg.Cluster.PeerTimeout, Registerer: reg, Logger: log.With("component", "cluster")})
		log.Info("cluster search: asking peers for their data not yet in the bucket", "node", st.Node(), "peers", len(cfg.Cluster.Peers))
	}
	searchH := search.NewHandler(search.Options{
		Peers:             peers,
		Source:            st,
		MaxConcurrency:    cfg.Search.Concurrency(),
		Timeout:           cfg.Search.Timeout,
		WriteStallTimeout: cfg.Search.WriteStallTimeout,
		DefaultLimit:      cfg.Search.DefaultLimit,
		Retention:         policy.Oldest,
		OnCount:           audit.ReportCount,
		OnAborted:         audit.ReportAborted,
		OnSkipped: func(ctx context.Context, files []search.SkippedFile) {
			names := make([]string, len(files))
			for i, f := range files {
				switch {
				case f.File == "":
					names[i] = "peer " + f.Peer + " (" + f.Reason + ")"
				case f.Peer != "":
					names[i] = f.File + " on peer " + f.Peer
				default:
					names[i] = f.File
				}
			}
			audit.ReportPartial(ctx, fmt.Sprintf("%d damaged segment file(s) or peer(s) skipped: %s", len(files), strings.Join(names, ", ")))
		},
		// A day past the retention that a legal hold keeps is read only
		// under the holding case.
		Held: func(r *http.Request) (time.Time, func(time.Time) bool) {
			return holds.ForCase(r.URL.Query().Get(audit.ParamCase))
		},
		GuardParams: []string{audit.ParamCase, audit.ParamReason},
		Logger:      log.With("component", "search"),
		Registerer:  reg,

		StatsMaxGroups: cfg.Search.StatsMaxGroups, StatsMaxKeyBytes: int(cfg.Search.StatsMaxKeyBytes),
	})

	auditPolicy := purge.Policy{Retention: cfg.Audit.Retention}
	sched, err := purge.NewScheduler(purge.Options{
		Store:               st,
		Policy:              policy,
		Schedule:            cfg.Purge.Schedule,
		MaxDaysPerRun:       cfg.Purge.MaxDaysPerRun,
		StartupIgnoresLimit: true,
		DataDir:             cfg.DataDir,
		Holds:               holds,
		Bucket:              rem.bucket,
		Node:                rem.node,
		OnReport: func(rep purge.Report) {
			// Save logs and counts a failure (retentiond_reports_write_failures_total).
			_, _ = reports.Save(report.KindPurge, rep.Now, rep)
		},
		Extra: []purge.Purgeable{purge.PurgeFunc(func(ctx context.Context, now time.Time) (purge.PurgeStats, error) {
			n, err := auditLog.Purge(ctx, auditPolicy.Oldest(now))
			return purge.PurgeStats{Name: "audit", Items: int64(n)}, err
		}), purge.PurgeFunc(func(ctx context.Context, now time.Time) (purge.PurgeStats, error) {
			n, err := caseReg.Purge(ctx, auditPolicy.Oldest(now))
			return purge.PurgeStats{Name: "cases", Items: int64(n)}, err
		}), purge.PurgeFunc(func(ctx context.Context, now time.Time) (purge.PurgeStats, error) {
			n, b, err := reports.Purge(ctx, auditPolicy.Oldest(now))
			return purge.PurgeStats{Name: "reports", Items: int64(n), Bytes: b}, err
		}), purge.PurgeFunc(func(ctx context.Context, now time.Time) (purge.PurgeStats, error) {
			n, err := holds.Purge(ctx, now)
			return purge.PurgeStats{Name: "holds", Items: int64(n)}, err
		})},
		Logger:     log.With("component", "purge"),
		Registerer: reg,
	})
	if err != nil {
		return err
	}

	guard := func(endpoint string, h http.HandlerFunc) http.Handler {
		return audit.Guard(authn, auditLog, endpoint, h)
	}
	// Bundles are signed with the daemon's one key, like reports.
	evidenceH := evidence.NewHandler(evidence.HandlerOptions{Search: searchH, Key: signKey, AuditDir: auditLog.Dir(),
		Version: buildinfo.Get().Version, Logger: log.With("component", "evidence")})
	httpMax, syslogMax := limitConnections(log, cfg.HTTP.MaxConnections, cfg.Ingest.SyslogMaxConnections)
	srv, err := server.New(server.Options{
		Addr:              cfg.Listen.HTTP,
		CertFile:          cfg.TLS.CertFile,
		KeyFile:           cfg.TLS.KeyFile,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxConnections:    httpMax,
		MinBodyRate:       int64(cfg.HTTP.MinBodyRate),
		Gatherer:          reg,
		Registerer:        reg,
		Health:            st.Health,
		Logger:            log.With("component", "http"),
		Routes: server.Routes{
			Ingest:      authn.RequireIngest(http.HandlerFunc(ingestH.ServeIngest)),
			IngestLines: authn.RequireIngest(http.HandlerFunc(ingestH.ServeLines)),
			Search:      guard("search", searchH.ServeSearch),
			Count:       guard("count", searchH.ServeCount),
			Stats:       guard("stats", searchH.ServeStats),
			Purge:       authn.Require(auth.RoleAdmin, sched),
			Flush:       authn.Require(auth.RoleAdmin, flushHandler(st.Flush)),
			Cases:       caseReg.Handler(authn),

			Histogram:      guard("histogram", searchH.ServeHistogram),
			Evidence:       guard("evidence", evidenceH.ServeBundle),
			EvidenceKey:    http.HandlerFunc(evidenceH.ServeKey),
			WhoAmI:         authn.WhoAmI(),
			Retention:      authn.Authenticated(http.HandlerFunc(sched.ServeCutoff)),
			RetentionAdmin: authn.Require(auth.RoleAdmin, http.HandlerFunc(sched.ServeStatus)),
			AuditCase:      authn.Require(auth.RoleSearch, auditLog.CaseHandler()),
			AuditAdmin:     authn.Require(auth.RoleAdmin, auditLog.AdminHandler()),
			UI:             ui.Handler(),

			Loki:         authn.RequireIngest(http.HandlerFunc(ingestH.ServeLoki)),
			Elastic:      authn.RequireIngest(http.HandlerFunc(ingestH.ServeElastic)),
			OTLP:         authn.RequireIngest(http.HandlerFunc(ingestH.ServeOTLP)),
			ElasticPaths: ingest.ElasticPaths,
			OTLPPaths:    ingest.OTLPPaths,

			Holds:   authn.Require(auth.RoleAdmin, holds.Handler()),
			Erase:   authn.Require(auth.RoleAdmin, eraser),
			Reports: authn.Require(auth.RoleAdmin, http.HandlerFunc(reports.ServeList)),
			Report:  authn.Require(auth.RoleAdmin, http.HandlerFunc(reports.ServeReport)),
			Cluster: clusterRoute(cfg.Cluster.Token, authn, auditLog, searchH, eraser),
		},
	})
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	log.Info("http listening", "addr", srv.Addr().String(), "tls", cfg.TLS.CertFile != "")

	// Syslog carries no token: only allow-listed sources (loopback when the
	// list is empty) may send it.
	syslogOpts := ingestOpts
	syslogOpts.SourceAllowed = authn.SourceAllowed
	var udp *ingest.UDPListener
	var tcp *ingest.TCPListener
	if cfg.Listen.SyslogUDP != "" {
		if udp, err = ingest.ListenSyslogUDP(ctx, cfg.Listen.SyslogUDP, syslogOpts); err != nil {
			return err
		}
		log.Info("syslog udp listening", "addr", udp.Addr().String())
	}
	if cfg.Listen.SyslogTCP != "" {
		if tcp, err = ingest.ListenSyslogTCP(ctx, cfg.Listen.SyslogTCP,
			ingest.TCPOptions{Options: syslogOpts, MaxConnections: syslogMax}); err != nil {
			return err
		}
		log.Info("syslog tcp listening", "addr", tcp.Addr().String())
	}

	// Catch up on purges missed while the daemon was down, before anyone
	// may search: an expired day must never be served.
	if cfg.Purge.OnStart {
		if _, err := sched.RunStartup(ctx); err != nil {
			log.Error("start-up purge failed; will retry on schedule", "err", err)
		}
	}
	sched.Start()
	srv.SetReady(true)
	daemon.SdNotify(false, daemon.SdNotifyReady)
	log.Info("ready")
	stopWatchdog := watchdog(log)

	var runErr error
	running := cfg
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break wait
		case runErr = <-serveErr:
			log.Error("http server failed", "err", runErr)
			break wait
		case <-hup:
			running = reloadConfig(running, authn, log)
		case <-st.Failed():
			delay := cmp.Or(hooks.failedExitDelay, storeFailedExitDelay)
			log.Error("store failed; exiting so that the service manager restarts the daemon and the WAL is replayed",
				"err", st.Health(), "exit_in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			runErr = st.Health()
			break wait
		}
	}
	stopWatchdog()
	daemon.SdNotify(false, daemon.SdNotifyStopping)

	// Stop input first, letting accepted batches finish (they are
	// acknowledged only once fsynced), then stop background work, then flush.
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	var errs []error
	if udp != nil {
		errs = append(errs, udp.Close())
	}
	if tcp != nil {
		errs = append(errs, tcp.Close())
	}
	errs = append(errs, srv.Shutdown(shutCtx))
	<-sched.Stop().Done()
	storeClosed = true
	errs = append(errs, st.Close())
	if err := errors.Join(append(errs, runErr)...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// watchdog pings systemd's watchdog at half its interval while the daemon
// runs, if the unit asks for one.
func watchdog(log *slog.Logger) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}()
	log.Debug("systemd watchdog enabled", "interval", interval)
	return func() { close(done) }
}

// clusterRoute is the endpoint the other nodes of a cluster ask for this
// node's data not yet in the bucket: only the node token passes, and every
// request is audited with the asking node and the case it forwarded.
// Without a node token it is not mounted.
func clusterRoute(token string, authn *auth.Authenticator, l *audit.Log, h *search.Handler, e *erasure.Eraser) http.Handler {
	if token == "" {
		return nil
	}
	ops := map[string]http.Handler{}
	for _, op := range search.PeerOps {
		ops[op] = audit.Forwarded(l, "cluster/"+op, http.HandlerFunc(h.ServePeer))
	}
	// A peer's erasure writes its own erasure audit line (requested by
	// node:<asker>, with the forwarded case) before it runs.
	ops["erase"] = http.HandlerFunc(e.ServePeer)
	return authn.RequireNode(token, search.NodeParam, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if op := ops[r.PathValue("op")]; op != nil {
			op.ServeHTTP(w, r)
			return
		}
		httpx.WriteError(w, http.StatusNotFound, "no such cluster operation; want one of "+strings.Join(search.PeerOps, ", ")+", erase")
	}))
}

// hostName is the node's default name: the host name, or "retentiond"
// when it cannot be read.
func hostName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "retentiond"
}
