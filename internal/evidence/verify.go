package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Result is what Verify found.
type Result struct {
	// Altered names the members whose bytes are not what the daemon
	// signed (changed, missing or added), in bundle order.
	Altered []string
	// Problems say, one sentence each, what is wrong; empty when OK.
	Problems []string
	// Fingerprint is that of the key that signed the manifest.
	Fingerprint string
	// Meta is bundle.json as read (zero when it could not be read).
	Meta Meta
	// Manifest is manifest.json as read.
	Manifest Manifest
}

// OK reports whether the bundle verified.
func (r *Result) OK() bool { return len(r.Altered) == 0 && len(r.Problems) == 0 }

func (r *Result) alter(name, why string) {
	if !slices.Contains(r.Altered, name) {
		r.Altered = append(r.Altered, name)
	}
	r.Problems = append(r.Problems, why)
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Trusted, when set, is the key the bundle must be signed with (the
	// one the daemon publishes at /api/v1/evidence/key). Without it a
	// bundle proves only that it was not changed after someone signed it;
	// with it, that the daemon signed it.
	Trusted ed25519.PublicKey
}

// maxMember bounds the members other than the records read into memory.
const maxMember = 16 << 20

// Verify checks a bundle offline: the manifest's signature, then every
// member's SHA-256 against the manifest. It returns an error only when the
// file cannot be read as a zip at all; an altered bundle is a Result that
// is not OK and names the members.
func Verify(r io.ReaderAt, size int64, opts VerifyOptions) (*Result, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("evidence bundle: not a readable zip file: %w", err)
	}
	res := &Result{}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			res.alter(f.Name, fmt.Sprintf("%s appears twice in the zip", f.Name))
			continue
		}
		files[f.Name] = f
	}
	read := func(name string, limit int64) ([]byte, bool) {
		f := files[name]
		if f == nil {
			res.alter(name, fmt.Sprintf("%s is missing", name))
			return nil, false
		}
		rc, err := f.Open()
		if err != nil {
			res.alter(name, fmt.Sprintf("%s cannot be read: %v", name, err))
			return nil, false
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, limit))
		if err != nil {
			res.alter(name, fmt.Sprintf("%s cannot be read: %v", name, err))
			return nil, false
		}
		return b, true
	}
	manb, ok1 := read(ManifestFile, maxMember)
	sigb, ok2 := read(SigFile, 1024)
	if !ok1 || !ok2 {
		return res, nil
	}
	if err := json.Unmarshal(manb, &res.Manifest); err != nil || res.Manifest.Format != Format {
		res.alter(ManifestFile, fmt.Sprintf("%s is not a %s manifest", ManifestFile, Format))
		return res, nil
	}
	pub, err := ParsePublic(res.Manifest.PublicKey)
	if err != nil {
		res.alter(ManifestFile, fmt.Sprintf("%s: %v", ManifestFile, err))
		return res, nil
	}
	res.Fingerprint = Fingerprint(pub)
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigb)))
	if err != nil || !ed25519.Verify(pub, manb, sig) {
		// The signature covers the manifest's exact bytes: either one of
		// them was changed, and the manifest is what holds the digests.
		res.alter(ManifestFile, fmt.Sprintf("the signature in %s does not match %s: one of them was altered", SigFile, ManifestFile))
		return res, nil
	}
	if opts.Trusted != nil && !bytes.Equal(opts.Trusted, pub) {
		res.Problems = append(res.Problems, fmt.Sprintf("signed by key %s, not by the trusted key %s", res.Fingerprint, Fingerprint(opts.Trusted)))
	}
	listed := map[string]bool{ManifestFile: true, SigFile: true}
	for _, e := range res.Manifest.Files {
		listed[e.Name] = true
		f := files[e.Name]
		if f == nil {
			res.alter(e.Name, fmt.Sprintf("%s is missing", e.Name))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			res.alter(e.Name, fmt.Sprintf("%s cannot be read: %v", e.Name, err))
			continue
		}
		h := sha256.New()
		var keep bytes.Buffer
		var w io.Writer = h
		if e.Name == BundleFile {
			w = io.MultiWriter(h, &keep)
		}
		// One byte past the manifest's size is enough to see a member
		// changed in length; reading no further bounds a decompression bomb.
		n, err := io.Copy(w, io.LimitReader(rc, e.Bytes+1))
		rc.Close()
		switch {
		case err != nil:
			// A changed compressed stream fails its CRC: that member was altered.
			res.alter(e.Name, fmt.Sprintf("%s cannot be read: %v", e.Name, err))
		case n != e.Bytes || hex.EncodeToString(h.Sum(nil)) != e.SHA256:
			res.alter(e.Name, fmt.Sprintf("%s does not match its SHA-256 in the manifest", e.Name))
		case e.Name == BundleFile:
			if err := json.Unmarshal(keep.Bytes(), &res.Meta); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", BundleFile, err))
			}
		}
	}
	for _, f := range zr.File {
		if !listed[f.Name] {
			res.alter(f.Name, fmt.Sprintf("%s is not in the manifest: it was added", f.Name))
		}
	}
	if !listed[RecordsFile] || !listed[BundleFile] {
		res.Problems = append(res.Problems, "the manifest does not list the records and bundle.json")
	}
	return res, nil
}
