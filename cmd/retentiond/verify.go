package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/wal"
)

func init() { register(newVerifyCmd) }

func newVerifyCmd() *cobra.Command {
	var cfgFile, dataDir string
	cmd := &cobra.Command{
		Use:   "verify [--config FILE | --data-dir DIR]",
		Short: "Check every checksum in a data directory: segments, WAL and audit chain (read-only)",
		Long: `Verify reads every segment file and decodes every block (checking its CRC32C), checks every
WAL frame, and verifies the audit log's hash chain. It changes nothing, so it is safe to run
beside a running daemon (a file being written may show as a torn WAL tail, which the daemon
repairs on its next start). Segment files the daemon quarantined (*.seg.corrupt) are damage
too and are reported every time, with the offset when the damage can still be found.
Exit status: 0 all good, 1 damage found (each problem is named with file and offset),
2 the directory could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				cfg, err := config.Load(cfgFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				dataDir = cfg.DataDir
			}
			return runVerify(cmd, dataDir)
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "config file whose data_dir to verify")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory to verify (overrides the config)")
	return cmd
}

func runVerify(cmd *cobra.Command, dir string) error {
	out := cmd.OutOrStdout()
	segs, quarantined, err := store.SegmentFiles(dir)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var problems []string
	var records int64
	for _, p := range segs {
		n, err := verifySegment(p)
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
		if _, err := verifySegment(p); err != nil {
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
	auditDir := filepath.Join(dir, "audit")
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

func verifySegment(path string) (int64, error) {
	r, err := segment.Open(path)
	if err != nil {
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
