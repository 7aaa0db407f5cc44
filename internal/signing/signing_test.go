package signing

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/retentiond/retentiond/internal/fsutil"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Load on an empty dir: %v, want ErrNoKey", err)
	}
	k1, err := LoadOrCreate(dir, fsutil.FS{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreate(dir, fsutil.FS{})
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Fatal("second start made a new key")
	}
	msg := []byte("report")
	if !ed25519.Verify(k2.Public(), msg, k1.Sign(msg)) {
		t.Fatal("signature does not verify")
	}
	pub, err := ParsePublic(k1.PublicText() + "\n")
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("ParsePublic(PublicText) = %v, %v", pub, err)
	}
	if len(Fingerprint(pub)) != 64 {
		t.Errorf("fingerprint %q", Fingerprint(pub))
	}
	if _, err := ParsePublic("not base64"); err == nil {
		t.Error("ParsePublic accepted garbage")
	}
}

func TestLoadRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/"+KeyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(KeyPath(dir), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, fsutil.FS{}); err == nil || errors.Is(err, ErrNoKey) {
		t.Fatalf("a damaged key file must not be replaced silently: %v", err)
	}
}

// TestAdoptsEvidenceKey checks that a key made for evidence bundles before
// one key signed everything becomes the daemon's key, so that bundles it
// signed verify against the published key.
func TestAdoptsEvidenceKey(t *testing.T) {
	old := t.TempDir()
	legacy, err := LoadOrCreate(old, fsutil.FS{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(legacyKeyPath(dir)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(KeyPath(old), legacyKeyPath(dir)); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreate(dir, fsutil.FS{})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().Equal(legacy.Public()) {
		t.Fatal("a new key was made instead of adopting the evidence key")
	}
	if _, err := os.Stat(legacyKeyPath(dir)); err == nil {
		t.Fatal("the evidence key is still in its old place: two copies of the private key")
	}
	if k2, err := Load(dir); err != nil || !k2.Public().Equal(k.Public()) {
		t.Fatalf("Load after adoption: %v", err)
	}
}
