package signing

import (
	"crypto/ed25519"
	"errors"
	"os"
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
