package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/wal"
)

func init() { register(newVerifyCmd) }

func newVerifyCmd() *cobra.Command {
	var cfgFile, dataDir, masterFile, keyDir, auditDir string
	cmd := &cobra.Command{
		Use:   "verify [--config FILE | --data-dir DIR]",
		Short: "Check every checksum in a data directory: segments, WAL and audit chain (read-only)",
		Long: `Verify reads every segment file and decodes every block (checking its CRC32C), checks every
WAL frame, and verifies the audit log's hash chain (with --config, the log at the config's
audit.path, where its daemon writes it; otherwise DATA_DIR/audit). It changes nothing, so it is safe to run
beside a running daemon (a file being written may show as a torn WAL tail, which the daemon
repairs on its next start). Segment files the daemon quarantined (*.seg.corrupt) are damage
too and are reported every time, with the offset when the damage can still be found.
With encryption (the config's encryption section, or --master-key and --key-dir), it also
unwraps every day key with the master key, and names every encrypted segment whose day has no
key, or a key other than the one it was sealed under; an encrypted segment it cannot check
for want of a master key is a problem too.
Exit status: 0 all good, 1 damage found (each problem is named with file and offset),
2 the directory could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" || (masterFile == "" && keyDir == "") {
				cfg, err := config.Load(cfgFile)
				if err != nil && dataDir == "" {
					return &exitError{code: 2, err: err}
				}
				if err == nil {
					if dataDir == "" {
						// The config's daemon writes its audit log at
						// audit.path (by default DATA_DIR/audit).
						auditDir = cfg.AuditPath()
					}
					dataDir = cmp.Or(dataDir, cfg.DataDir)
					if cfg.Encryption.Enabled && masterFile == "" {
						masterFile = masterKeyPath(cfg.Encryption.MasterKeyFile)
						keyDir = cmp.Or(keyDir, cfg.KeyDir())
					}
				}
			}
			var master []byte
			if masterFile != "" {
				var err error
				if master, err = keys.LoadMaster(masterFile); err != nil {
					return &exitError{code: 2, err: err}
				}
				defer clear(master)
				keyDir = cmp.Or(keyDir, filepath.Join(dataDir, "keys"))
			}
			return runVerify(cmd, dataDir, cmp.Or(auditDir, filepath.Join(dataDir, "audit")), keyDir, master)
		},
	}
	cmd.Flags().StringVar(&masterFile, "master-key", "", "master key file of an encrypted data directory (default: the config's encryption.master_key_file)")
	cmd.Flags().StringVar(&keyDir, "key-dir", "", "key directory (default: the config's encryption.key_dir, or DATA_DIR/keys)")
	cmd.Flags().StringVar(&cfgFile, "config", "", "config file whose data_dir to verify")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory to verify (overrides the config)")
	return cmd
}

// runVerify checks the data directory dir and the audit log in auditDir.
func runVerify(cmd *cobra.Command, dir, auditDir, keyDir string, master []byte) error {
	out := cmd.OutOrStdout()
	segs, quarantined, err := store.SegmentFiles(dir)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var problems []string
	var opts segment.OpenOptions
	if master != nil {
		entries, err := keys.Verify(keyDir, master)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		active, destroyed := 0, 0
		for _, e := range entries {
			switch {
			case e.Destroyed:
				destroyed++
			case e.Err != nil:
				problems = append(problems, fmt.Sprintf("key of day %s (id %s) cannot be unwrapped: %v", record.DayString(e.Day), e.ID, e.Err))
			default:
				active++
			}
		}
		fmt.Fprintf(out, "keys: %d day keys, %d destroyed (files awaiting removal)\n", active, destroyed)
		ring, err := keys.Open(keyDir, master, keys.Options{ReadOnly: true})
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		opts.Keys = ring
	}
	var records int64
	for _, p := range segs {
		n, err := verifySegment(p, opts)
		records += n
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	fmt.Fprintf(out, "segments: %d files, %d records\n", len(segs), records)
	// Quarantined files (see docs/storage.md) are damage whose records are
	// missing from every search: name them with what is wrong, every time.
	for _, p := range quarantined {
		why := "its blocks verify now; restore the original from a backup or remove it"
		if _, err := verifySegment(p, opts); err != nil {
			why = err.Error()
		}
		problems = append(problems, fmt.Sprintf("quarantined segment %s: its records are not searchable: %s", p, why))
	}
	wals, err := wal.Files(store.WALDir(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, err.Error())
	}
	frames := 0
	for _, p := range wals {
		n, err := wal.VerifyFile(p)
		frames += n
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	fmt.Fprintf(out, "wal: %d files, %d batches\n", len(wals), frames)
	if _, err := os.Stat(auditDir); err == nil {
		res, err := audit.Verify(auditDir)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("audit: %v", err))
		case res.FirstBad != nil:
			problems = append(problems, fmt.Sprintf("audit: %s", res.FirstBad))
		default:
			fmt.Fprintf(out, "audit: %d lines, chain intact\n", res.Lines)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(out, "DAMAGED:", p)
		}
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found in %s", len(problems), dir)}
	}
	fmt.Fprintln(out, "OK")
	return nil
}

func verifySegment(path string, opts segment.OpenOptions) (int64, error) {
	r, err := segment.OpenWith(path, opts)
	switch {
	case errors.Is(err, segment.ErrNoKeys):
		return 0, fmt.Errorf("%w: pass --master-key (or configure encryption) to check it", err)
	case errors.Is(err, keys.ErrDestroyed):
		return 0, fmt.Errorf("%w: the purge destroyed this day's key; its files are unreadable and the next purge removes them", err)
	case err != nil:
		return 0, err
	}
	defer r.Close()
	for i := 0; i < r.NumBlocks(); i++ {
		if _, err := r.ReadBlock(i, segment.ColAll); err != nil {
			return r.Info().Records, err
		}
	}
	return r.Info().Records, nil
}
