package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
)

// masterKeyPath resolves encryption.master_key_file: a relative path is
// looked up in $CREDENTIALS_DIRECTORY when systemd set it (LoadCredential),
// so the same configuration works under the unit and from a shell.
func masterKeyPath(file string) string {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && !filepath.IsAbs(file) {
		return filepath.Join(dir, file)
	}
	return file
}

// openKeyRing opens the key ring of cfg, or returns nil when encryption is
// off.
func openKeyRing(cfg *config.Config) (*keys.Ring, error) {
	if !cfg.Encryption.Enabled {
		return nil, nil
	}
	master, err := keys.LoadMaster(masterKeyPath(cfg.Encryption.MasterKeyFile))
	if err != nil {
		return nil, err
	}
	defer clear(master)
	return keys.Open(cfg.KeyDir(), master, keys.Options{})
}

// The subcommands of `retentiond keys` (keys.go) for encryption at rest:
// `keys days` lists the day keys, `keys rotate-master` re-wraps them.

func newKeysDaysCmd() *cobra.Command {
	var cfgFile, keyDir string
	cmd := &cobra.Command{
		Use:   "days [--config FILE | --key-dir DIR]",
		Short: "List the day keys of encryption at rest (day, key id, state); reads no key material",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyDir == "" {
				cfg, err := config.Load(cfgFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				keyDir = cfg.KeyDir()
			}
			entries, err := keys.List(keyDir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tKEY ID\tSTATE")
			for _, e := range entries {
				state := "active"
				if e.Destroyed {
					state = "destroyed (files not yet removed)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", record.DayString(e.Day), e.ID, state)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "config file whose encryption.key_dir to list")
	cmd.Flags().StringVar(&keyDir, "key-dir", "", "key directory (overrides the config)")
	return cmd
}

func newKeysRotateMasterCmd() *cobra.Command {
	var cfgFile, keyDir, oldFile, newFile string
	cmd := &cobra.Command{
		Use:   "rotate-master --new FILE [--old FILE] [--config FILE | --key-dir DIR]",
		Short: "Re-wrap every day key under a new master key",
		Long: `rotate-master unwraps every day key of the key directory with the old master key (--old, default
the config's encryption.master_key_file) and wraps it again under the new one (--new), each key file
replaced atomically. A key already wrapped by the new master key is skipped, so an interrupted run is
finished by running it again. Stop the daemon first (it caches unwrapped keys but reads new days' key
files with the master key it started with), then point encryption.master_key_file at the new key
(or replace the credential), start the daemon, and destroy the old master key.
Exit status: 0 done, 1 a key could not be re-wrapped (the others are done), 2 bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyDir == "" || oldFile == "" {
				cfg, err := config.Load(cfgFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if keyDir == "" {
					keyDir = cfg.KeyDir()
				}
				if oldFile == "" {
					oldFile = masterKeyPath(cfg.Encryption.MasterKeyFile)
				}
			}
			if newFile == "" || oldFile == "" {
				return &exitError{code: 2, err: errors.New("--new (and --old, or encryption.master_key_file) are required")}
			}
			oldKey, err := keys.LoadMaster(oldFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			newKey, err := keys.LoadMaster(newFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			n, err := keys.RotateMaster(keyDir, oldKey, newKey, keys.Options{})
			clear(oldKey)
			clear(newKey)
			fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d day key(s) in %s\n", n, keyDir)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "config file (encryption.key_dir, encryption.master_key_file)")
	cmd.Flags().StringVar(&keyDir, "key-dir", "", "key directory (overrides the config)")
	cmd.Flags().StringVar(&oldFile, "old", "", "current master key file (default: encryption.master_key_file)")
	cmd.Flags().StringVar(&newFile, "new", "", "new master key file (head -c 32 /dev/urandom > new.key)")
	return cmd
}
