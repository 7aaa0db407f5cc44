package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/importer"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

func init() { register(newImportCmd) }

// Exit statuses of import besides 0 (everything imported) and 1 (a file
// failed): 3 says that files were refused as already imported and nothing
// else went wrong, so a cron job re-running an import can tell the cases apart.
const exitAlreadyImported = 3

type importFlags struct {
	client       apiClient
	configPath   string
	format       string
	domain       string
	dataDir      string
	ledger       string
	force        bool
	batchSize    int
	maxLineBytes int
	retention    string
	progress     string
}

func newImportCmd() *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import [flags] FILE...",
		Short: "Backfill existing access logs (plain, .gz or .zst; - for stdin), each file exactly once",
		Long: `Import reads access logs and stores their records, skipping records whose day is already past
retention. Files may be plain, gzip or zstd compressed (detected from their content); "-" reads stdin.

By default the records go to the running daemon (--server, --token) through POST /api/v1/ingest.
With --data-dir they are written straight into a stopped daemon's data directory (the directory
lock makes this fail while a daemon runs on it).

A ledger remembers what was imported (size and SHA-256 of each file's content): importing the same
content again is refused (--force overrides), an interrupted import resumes after its last
acknowledged batch, and a log that has grown since it was imported continues where it stopped.
The ledger lives in the data directory with --data-dir, else at --ledger.

Exit status: 0 when every file was imported, 3 when the only problem was files already imported,
1 otherwise. Rejected lines do not change the exit status; the summary lists them.`,
		Example: `  retentiond import --format vhost_combined /var/log/apache2/other_vhosts_access.log*
  retentiond import --format combined --domain www.example.nl access.log.2.gz
  zcat old/*.gz | retentiond import --domain shop.example.nl -
  retentiond import --data-dir /var/lib/retentiond access.log.1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImport(cmd, &f, args) },
	}
	addClientFlags(cmd, &f.client)
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "configuration file for retention and limits (default: the daemon's usual locations)")
	fl.StringVar(&f.format, "format", "auto", "log format: auto, combined, vhost_combined or json")
	fl.StringVar(&f.domain, "domain", "", "virtual host for logs that carry none (combined)")
	fl.StringVar(&f.dataDir, "data-dir", "", "write directly into this (stopped) daemon's data directory instead of the API")
	fl.StringVar(&f.ledger, "ledger", "", "ledger file for API imports (default $XDG_STATE_HOME/retentiond/imports.json or ~/.local/state/retentiond/imports.json)")
	fl.BoolVar(&f.force, "force", false, "import files even if the ledger says they were imported")
	fl.IntVar(&f.batchSize, "batch-size", importer.DefaultBatchSize, "records per request or store append")
	fl.IntVar(&f.maxLineBytes, "max-line-bytes", 0, "longest line accepted (default: ingest.max_line_bytes of the configuration)")
	fl.StringVar(&f.retention, "retention", "", "retention (2y, 730d) for skipping expired records (default: the configuration's)")
	fl.StringVar(&f.progress, "progress", "auto", "progress display on stderr: auto, bar, plain or none")
	return cmd
}

func runImport(cmd *cobra.Command, f *importFlags, files []string) error {
	switch f.format {
	case "auto", "combined", "vhost_combined", "json":
	default:
		return fmt.Errorf("unknown --format %q: want auto, combined, vhost_combined or json", f.format)
	}
	if f.domain != "" {
		if _, err := record.NormalizeDomain(f.domain); err != nil {
			return fmt.Errorf("--domain: %w", err)
		}
	}
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return err
	}
	ret := cfg.Retention
	if f.retention != "" {
		if ret, err = policy.ParseRetention(f.retention); err != nil {
			return fmt.Errorf("--retention: %w", err)
		}
	}
	expiry := purge.Policy{Retention: ret}
	maxLine := f.maxLineBytes
	if maxLine <= 0 {
		maxLine = int(cfg.Ingest.MaxLineBytes)
	}

	opts := importer.Options{
		Format:       f.format,
		Domain:       f.domain,
		Force:        f.force,
		BatchSize:    f.batchSize,
		MaxLineBytes: maxLine,
		TimeWindow: func(now time.Time) (time.Time, time.Time) {
			return expiry.IngestWindow(now, cfg.Ingest.MaxFuture)
		},
	}

	var ledgerPath string
	if f.dataDir != "" {
		// Direct mode: the store's lock keeps a running daemon from being
		// written under, and the ledger travels with the data it describes.
		// A mistyped directory must not silently become a new, empty store.
		if fi, err := os.Stat(f.dataDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--data-dir %s is not an existing data directory", f.dataDir)
		}
		st, err := store.Open(f.dataDir, store.Options{
			Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			return fmt.Errorf("open data directory: %w", err)
		}
		defer func() {
			if err := st.Close(); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "retentiond: close data directory:", err)
			}
		}()
		abs, _ := filepath.Abs(f.dataDir)
		opts.Sink = importer.StoreSink{Store: st}
		opts.Dest = "data-dir:" + abs
		ledgerPath = filepath.Join(f.dataDir, "imports.json")
	} else {
		token := f.client.token
		if token == "" {
			token = os.Getenv("RETENTIOND_TOKEN")
		}
		opts.Sink = &importer.APISink{Server: f.client.base, Token: token, Client: f.client.client()}
		opts.Dest = strings.TrimRight(f.client.base, "/")
		if ledgerPath = f.ledger; ledgerPath == "" {
			if ledgerPath, err = importer.DefaultLedgerPath(); err != nil {
				return err
			}
		}
	}
	ledger, err := importer.OpenLedger(ledgerPath)
	if err != nil {
		return err
	}
	defer ledger.Close()
	opts.Ledger = ledger

	stderr := cmd.ErrOrStderr()
	isTerm := false
	if fd, ok := stderr.(interface{ Fd() uintptr }); ok {
		isTerm = term.IsTerminal(int(fd.Fd()))
	}
	switch f.progress {
	case "auto":
		opts.Progress = importer.NewProgress(stderr, isTerm, 10*time.Second)
	case "bar":
		opts.Progress = importer.NewProgress(stderr, true, 0)
	case "plain":
		opts.Progress = importer.NewProgress(stderr, false, 10*time.Second)
	case "none":
	default:
		return fmt.Errorf("unknown --progress %q: want auto, bar, plain or none", f.progress)
	}

	im := importer.New(opts)
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	stopOnSignals(stderr, im, cancel)

	var failed, refused int
	for _, file := range files {
		err := im.ImportFile(ctx, file)
		switch {
		case err == nil:
		case errors.Is(err, importer.ErrAlreadyImported):
			refused++
			fmt.Fprintln(stderr, "retentiond: import", err)
		default:
			failed++
			fmt.Fprintln(stderr, "retentiond: import", err)
			if errors.Is(err, importer.ErrInterrupted) || ctx.Err() != nil {
				fmt.Fprintln(stderr, "retentiond: progress is saved in", ledger.Path(), "; run the same command again to resume")
				im.Summary().WriteText(cmd.OutOrStdout())
				return &exitError{code: 1, err: errors.New("import interrupted")}
			}
		}
	}
	im.Summary().WriteText(cmd.OutOrStdout())
	switch {
	case failed > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d of %d file(s) failed", failed, len(files))}
	case refused > 0:
		return &exitError{code: exitAlreadyImported, err: fmt.Errorf("%d of %d file(s) were already imported", refused, len(files))}
	}
	return nil
}

// stopOnSignals makes the first SIGINT/SIGTERM finish the batch in flight
// (so that its outcome is known and recorded) and the second abort at once.
func stopOnSignals(w io.Writer, im *importer.Importer, cancel context.CancelFunc) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(w, "\nretentiond: stopping after the current batch; interrupt again to abort at once")
		im.Stop()
		<-sig
		cancel()
	}()
}
