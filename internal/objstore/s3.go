package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultRequestTimeout bounds one small request (a range GET, a HEAD, a
// conditional create, a delete, one listing) when Config.RequestTimeout is
// zero: an unreachable store must turn a search into an error naming it,
// not into a hang.
const DefaultRequestTimeout = 30 * time.Second

// DefaultPartSize is the size up to which Put sends one PUT and, above it,
// the part size of a multipart upload. A day of one node at 10⁹ pageviews
// a day is ~10 GB: 160 parts (S3 allows 10 000), a failed part retries
// 64 MiB, and the one part buffer the client holds (to compute the part's
// Content-MD5) is 64 MiB per upload.
const DefaultPartSize = 64 << 20

// minPartSize is S3's smallest part (all but the last).
const minPartSize = 5 << 20

// shaMeta is the user metadata (x-amz-meta-sha256) Put stores the object's
// SHA-256 under, so that a reader can verify a whole download and Put can
// check a multipart upload whose ETag is not an MD5 of the content.
const shaMeta = "Sha256"

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is the store's URL: scheme and host[:port], no path
	// ("http://127.0.0.1:8333", "https://s3.eu-west-1.amazonaws.com").
	// Requests use path-style addressing (endpoint/bucket/key), which
	// SeaweedFS and Ceph RGW need and AWS S3 still serves.
	Endpoint string
	Bucket   string
	// Prefix is put before every key ("retentiond/" keeps the daemon's
	// objects apart from others in a shared bucket); keys passed to and
	// returned by a Bucket are relative to it. A missing trailing "/" is
	// added.
	Prefix string
	// Region is the signing region; empty is "us-east-1".
	Region string
	// AccessKeyID and SecretAccessKey sign requests. Empty: the
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
	// environment variables; none of those either: anonymous (unsigned)
	// requests. They never appear in errors, String() or logs.
	AccessKeyID     string
	SecretAccessKey string
	// CAFile is a PEM file of CA certificates trusted for an https
	// endpoint, besides the system's (a private CA of an on-premises store).
	CAFile string
	// RequestTimeout bounds each small request; zero: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// PartSize is Put's single-PUT limit and multipart part size; zero:
	// DefaultPartSize. At least 5 MiB (tests use the minimum).
	PartSize int64
	// MaxRetries is how often the client retries a failed request; zero:
	// 3 (an outage must surface within the request timeout, not after the
	// client library's default of 10 retries).
	MaxRetries int
}

// s3Bucket is a Bucket on an S3-compatible store through minio-go.
type s3Bucket struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	name     string // endpoint/bucket[/prefix]: what errors and logs call it
	timeout  time.Duration
	partSize int64
	secrets  []string // credential strings scrubbed from every error text
}

// New returns the bucket cfg describes. It checks the configuration only
// and sends no request (a store that is down at start must not stop the
// daemon: the local disk is the buffer).
func New(cfg Config) (Bucket, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("objstore: endpoint must be an http:// or https:// URL with a host")
	}
	if u.User != nil {
		// The URL is not echoed: user info is a credential.
		return nil, errors.New("objstore: endpoint must not carry user info; set access_key_id and secret_access_key")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("objstore: endpoint %s://%s must have no path or query (the bucket is configured apart)", u.Scheme, u.Host)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("objstore: bucket is empty")
	}
	prefix := cfg.Prefix
	if strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("objstore: prefix %q must not start with /", prefix)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < minPartSize {
		return nil, fmt.Errorf("objstore: part size %d below S3's minimum of %d", part, minPartSize)
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	retries := cfg.MaxRetries
	if retries <= 0 {
		retries = 3
	}

	creds, secrets, err := resolveCredentials(cfg)
	if err != nil {
		return nil, err
	}
	secure := u.Scheme == "https"
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("objstore: transport: %w", err)
	}
	if secure {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("objstore: ca file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("objstore: ca file %s holds no PEM certificate", cfg.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
	} else if cfg.CAFile != "" {
		return nil, errors.New("objstore: ca file given for an http:// endpoint")
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   retries,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: client for %s://%s: %s", u.Scheme, u.Host, scrub(err.Error(), secrets))
	}
	name := u.Scheme + "://" + u.Host + "/" + cfg.Bucket
	if prefix != "" {
		name += "/" + strings.TrimSuffix(prefix, "/")
	}
	return &s3Bucket{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.Bucket,
		prefix:   prefix,
		name:     name,
		timeout:  timeout,
		partSize: part,
		secrets:  secrets,
	}, nil
}

// resolveCredentials picks the config's keys, else the AWS_* environment,
// else anonymous access, and returns the strings errors must never show.
func resolveCredentials(cfg Config) (*credentials.Credentials, []string, error) {
	id, secret, token := cfg.AccessKeyID, cfg.SecretAccessKey, ""
	from := "access_key_id/secret_access_key"
	if id == "" && secret == "" {
		id, secret, token = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
		from = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
	}
	if (id == "") != (secret == "") {
		return nil, nil, fmt.Errorf("objstore: %s: one is set without the other", from)
	}
	if id == "" {
		return credentials.NewStatic("", "", "", credentials.SignatureAnonymous), nil, nil
	}
	var secrets []string
	for _, s := range []string{id, secret, token} {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	return credentials.NewStaticV4(id, secret, token), secrets, nil
}

// scrub replaces every credential string in s: a server's error message
// may quote the access key (InvalidAccessKeyId), and none may reach a log.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

func (b *s3Bucket) String() string { return b.name }

// Error is a failed operation on a bucket. Its text names the store, the
// operation and the key (relative to the prefix), never a credential.
// errors.Is finds ErrNotFound, ErrExists and context errors through it.
type Error struct {
	Store string // endpoint/bucket[/prefix]
	Op    string
	Key   string
	// Code and Status are the store's S3 error code and HTTP status, when
	// it answered.
	Code   string
	Status int
	kind   error // ErrNotFound, ErrExists or nil
	err    error
	text   string // err's text, scrubbed
}

func (e *Error) Error() string {
	var sb strings.Builder
	sb.WriteString("objstore ")
	sb.WriteString(e.Store)
	sb.WriteString(": ")
	sb.WriteString(e.Op)
	if e.Key != "" {
		sb.WriteString(" ")
		sb.WriteString(e.Key)
	}
	sb.WriteString(": ")
	if e.kind != nil {
		sb.WriteString(e.kind.Error())
		sb.WriteString(": ")
	}
	sb.WriteString(e.text)
	return sb.String()
}

// Unwrap gives errors.Is the kind (ErrNotFound, ErrExists) and the cause.
func (e *Error) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.err}
}

// fail wraps err from op on key, mapping the store's answers to the
// package's sentinels.
func (b *s3Bucket) fail(op, key string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	e := &Error{Store: b.name, Op: op, Key: key, err: err}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		e.Code, e.Status = resp.Code, resp.StatusCode
		switch {
		case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" ||
			(resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket"):
			e.kind = ErrNotFound
		case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
			e.kind = ErrExists
		}
		msg := resp.Message
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		if resp.Code != "" {
			msg = resp.Code + ": " + msg
		}
		if resp.StatusCode != 0 {
			msg = fmt.Sprintf("%s (HTTP %d)", msg, resp.StatusCode)
		}
		e.text = scrub(msg, b.secrets)
		// The store's answer may quote the request's credential (the
		// access key of InvalidAccessKeyId): the chain keeps only the
		// scrubbed text.
		e.err = errors.New(e.text)
	} else {
		e.text = scrub(err.Error(), b.secrets)
		if e.text != err.Error() {
			e.err = errors.New(e.text)
		}
	}
	return e
}

// short bounds one small request by the configured timeout.
func (b *s3Bucket) short(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

func (b *s3Bucket) full(key string) string { return b.prefix + key }

// info converts the client's object info to ours, relative to the prefix.
func (b *s3Bucket) info(oi minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{
		Key:          strings.TrimPrefix(oi.Key, b.prefix),
		Size:         oi.Size,
		ETag:         strings.Trim(oi.ETag, `"`),
		LastModified: oi.LastModified,
		VersionID:    oi.VersionID,
		DeleteMarker: oi.IsDeleteMarker,
	}
}

// sums are the digests Put computes over the body before sending it.
type sums struct {
	md5    []byte
	sha256 []byte
	parts  [][]byte // MD5 of each part, when the upload is multipart
}

// multipartETag is the ETag S3 gives a multipart object: the MD5 of the
// parts' MD5s, "-", the part count.
func (s sums) multipartETag() string {
	h := md5.New()
	for _, p := range s.parts {
		h.Write(p)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(s.parts))
}

// digest reads size bytes of body and returns their sums and a reader of
// the same bytes for the upload. A seekable body (an *os.File) is read
// twice (hashing a local file is cheap beside sending it), so that the
// digests are known before the first byte is sent: the single PUT then
// carries Content-MD5 and a signed SHA-256 the store checks, and a
// multipart upload carries the SHA-256 in its metadata. A body that cannot
// seek is held in memory, which only a single PUT allows.
func (b *s3Bucket) digest(body io.Reader, size int64) (sums, io.Reader, error) {
	var s sums
	whole, sha := md5.New(), sha256.New()
	multipart := size > b.partSize
	hashAll := func(r io.Reader) error {
		var part hash.Hash
		var inPart int64
		buf := make([]byte, 256<<10)
		var done int64
		for done < size {
			n := int64(len(buf))
			if n > size-done {
				n = size - done
			}
			if multipart {
				if part == nil {
					part, inPart = md5.New(), 0
				}
				if n > b.partSize-inPart {
					n = b.partSize - inPart
				}
			}
			m, err := io.ReadFull(r, buf[:n])
			if err != nil {
				return fmt.Errorf("body shorter than its size %d: %w", size, err)
			}
			whole.Write(buf[:m])
			sha.Write(buf[:m])
			if multipart {
				part.Write(buf[:m])
				inPart += int64(m)
				if inPart == b.partSize {
					s.parts = append(s.parts, part.Sum(nil))
					part = nil
				}
			}
			done += int64(m)
		}
		if part != nil {
			s.parts = append(s.parts, part.Sum(nil))
		}
		return nil
	}
	var rd io.Reader
	if rs, ok := body.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return s, nil, err
		}
		if err := hashAll(rs); err != nil {
			return s, nil, err
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return s, nil, err
		}
		rd = io.LimitReader(rs, size)
		if ra, ok := body.(io.ReaderAt); ok {
			// Seekable, so that the client can retry a request.
			rd = io.NewSectionReader(ra, start, size)
		}
	} else {
		if multipart {
			return s, nil, fmt.Errorf("a body of %d bytes (above the %d-byte single PUT) must be seekable", size, b.partSize)
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(body, buf); err != nil {
			return s, nil, fmt.Errorf("body shorter than its size %d: %w", size, err)
		}
		if err := hashAll(bytes.NewReader(buf)); err != nil {
			return s, nil, err
		}
		rd = bytes.NewReader(buf)
	}
	s.md5, s.sha256 = whole.Sum(nil), sha.Sum(nil)
	return s, rd, nil
}

// Put uploads size bytes of body and verifies the result. Up to the part
// size (64 MiB by default) it is one PUT carrying Content-MD5 and, when
// signed, the payload's SHA-256: the store refuses a body that does not
// match, and the HEAD after it must show the size and an ETag equal to the
// MD5. Above it is a multipart upload whose every part carries its
// Content-MD5 and SHA-256 (checked by the store); the HEAD must show the
// size and the multipart ETag computed from the parts' MD5s. Both carry
// the object's SHA-256 in the metadata (x-amz-meta-sha256), which the HEAD
// must show too. Either way the object appears whole
// or not at all. A store whose ETag is not an MD5 (AWS with SSE-KMS or
// SSE-C) fails the check: use no server-side encryption or SSE-S3 (the
// segments are sealed by the daemon's day keys already).
func (b *s3Bucket) Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error) {
	if size < 0 {
		return ObjectInfo{}, b.fail("put", key, fmt.Errorf("negative size %d", size))
	}
	s, rd, err := b.digest(body, size)
	if err != nil {
		return ObjectInfo{}, b.fail("put", key, err)
	}
	shaHex := hex.EncodeToString(s.sha256)
	opts := minio.PutObjectOptions{
		UserMetadata: map[string]string{shaMeta: shaHex},
		ContentType:  "application/octet-stream",
		// Sign the SHA-256 computed above instead of the chunked streaming
		// signature minio-go uses on http:// endpoints.
		DisableContentSha256: true,
	}
	multipart := size > b.partSize
	if multipart {
		err = b.putMultipart(ctx, key, rd, size, s, opts)
	} else {
		opts.DisableMultipart = true
		_, err = b.core.PutObject(ctx, b.bucket, b.full(key), rd, size,
			base64.StdEncoding.EncodeToString(s.md5), shaHex, opts)
	}
	if err != nil {
		return ObjectInfo{}, b.fail("put", key, err)
	}
	// Read back what the store holds.
	sctx, cancel := b.short(ctx)
	defer cancel()
	oi, err := b.client.StatObject(sctx, b.bucket, b.full(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, b.fail("put: verify", key, err)
	}
	info := b.info(oi)
	info.Key = key
	// A single PUT's ETag is the MD5 of the content everywhere; a
	// multipart object's is the MD5 of the parts' MD5s with "-<parts>" on
	// AWS, Ceph, MinIO and SeaweedFS, and the content's MD5 on some others
	// (gofakes3). Either proves the content.
	want := []string{hex.EncodeToString(s.md5)}
	if multipart {
		want = append(want, s.multipartETag())
	}
	var bad string
	switch {
	case info.Size != size:
		bad = fmt.Sprintf("size %d, sent %d", info.Size, size)
	case !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(info.ETag, w) }):
		bad = fmt.Sprintf("ETag %s, expected %s", info.ETag, strings.Join(want, " or "))
	case metaValue(oi.UserMetadata, shaMeta) != shaHex:
		bad = fmt.Sprintf("sha256 metadata %q, expected %s", metaValue(oi.UserMetadata, shaMeta), shaHex)
	}
	if bad != "" {
		return ObjectInfo{}, b.fail("put: verify", key, errors.New("stored object differs: "+bad))
	}
	return info, nil
}

// putMultipart uploads size bytes of rd in parts of the part size, each
// one PUT carrying its Content-MD5 and signed SHA-256 (computed here, so
// that no request needs the chunked streaming signature some stores do not
// decode), and aborts the upload on any failure so that no parts are left
// behind where the abort reaches the store. One part is held in memory.
func (b *s3Bucket) putMultipart(ctx context.Context, key string, rd io.Reader, size int64, s sums, opts minio.PutObjectOptions) error {
	full := b.full(key)
	id, err := b.core.NewMultipartUpload(ctx, b.bucket, full, opts)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
			defer cancel()
			_ = b.core.AbortMultipartUpload(actx, b.bucket, full, id)
		}
	}()
	buf := make([]byte, b.partSize)
	parts := make([]minio.CompletePart, 0, len(s.parts))
	var sent int64
	for i, partMD5 := range s.parts {
		n := min(b.partSize, size-sent)
		if _, err := io.ReadFull(rd, buf[:n]); err != nil {
			return fmt.Errorf("read part %d: %w", i+1, err)
		}
		if sum := md5.Sum(buf[:n]); !bytes.Equal(sum[:], partMD5) {
			return fmt.Errorf("part %d changed while uploading (the body must not change during Put)", i+1)
		}
		sha := sha256.Sum256(buf[:n])
		op, err := b.core.PutObjectPart(ctx, b.bucket, full, id, i+1, bytes.NewReader(buf[:n]), n, minio.PutObjectPartOptions{
			Md5Base64: base64.StdEncoding.EncodeToString(partMD5),
			Sha256Hex: hex.EncodeToString(sha[:]),
			// The signed SHA-256 above, not the chunked streaming
			// signature (its body framing is not decoded by every store).
			DisableContentSha256: true,
		})
		if err != nil {
			return fmt.Errorf("part %d: %w", i+1, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: i + 1, ETag: op.ETag})
		sent += n
	}
	if _, err := b.core.CompleteMultipartUpload(ctx, b.bucket, full, id, parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	done = true
	return nil
}

// metaValue finds a user metadata value whatever case the store gives the
// name in.
func metaValue(m map[string]string, name string) string {
	for k, v := range m {
		if strings.EqualFold(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"), name) {
			return v
		}
	}
	return ""
}

// PutIfAbsent creates key with one PUT carrying If-None-Match: * (S3,
// SeaweedFS and Ceph answer 412 when the key exists): the lease primitive.
func (b *s3Bucket) PutIfAbsent(ctx context.Context, key string, body []byte) error {
	ctx, cancel := b.short(ctx)
	defer cancel()
	sum := md5.Sum(body)
	sha := sha256.Sum256(body)
	opts := minio.PutObjectOptions{DisableMultipart: true, ContentType: "application/octet-stream", DisableContentSha256: true}
	opts.SetMatchETagExcept("*")
	_, err := b.core.PutObject(ctx, b.bucket, b.full(key), bytes.NewReader(body), int64(len(body)),
		base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sha[:]), opts)
	if err != nil {
		return b.fail("create", key, err)
	}
	return nil
}

// ReadAt reads exactly len(p) bytes at off with one range GET; anything
// shorter is an error (a range past the end included).
func (b *s3Bucket) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if off < 0 {
		return b.fail("read", key, fmt.Errorf("negative offset %d", off))
	}
	ctx, cancel := b.short(ctx)
	defer cancel()
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return b.fail("read", key, err)
	}
	rc, _, _, err := b.core.GetObject(ctx, b.bucket, b.full(key), opts)
	if err != nil {
		return b.fail("read", key, err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if err != nil {
		return b.fail("read", key, fmt.Errorf("%d of %d bytes at %d: %w", n, len(p), off, err))
	}
	// A store that ignored the range sends more than asked: that is not the
	// range we wanted either.
	var one [1]byte
	if m, _ := rc.Read(one[:]); m != 0 {
		return b.fail("read", key, fmt.Errorf("store sent more than the %d bytes at %d asked for", len(p), off))
	}
	return nil
}

// Get copies the whole object to w (no request timeout: its length is
// the object's; ctx bounds it).
func (b *s3Bucket) Get(ctx context.Context, key string, w io.Writer) (int64, error) {
	rc, oi, _, err := b.core.GetObject(ctx, b.bucket, b.full(key), minio.GetObjectOptions{})
	if err != nil {
		return 0, b.fail("get", key, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, b.fail("get", key, err)
	}
	if n != oi.Size {
		return n, b.fail("get", key, fmt.Errorf("%d of %d bytes", n, oi.Size))
	}
	return n, nil
}

// Stat is a HEAD.
func (b *s3Bucket) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	ctx, cancel := b.short(ctx)
	defer cancel()
	oi, err := b.client.StatObject(ctx, b.bucket, b.full(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, b.fail("stat", key, err)
	}
	info := b.info(oi)
	info.Key = key
	return info, nil
}

// List lists every current object under prefix (recursively, all pages).
func (b *s3Bucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	return b.list(ctx, "list", prefix, false)
}

// list lists objects (versions: every version and delete marker) under
// prefix, sorted by key (and, for versions, as the store orders them).
func (b *s3Bucket) list(ctx context.Context, op, prefix string, versions bool) ([]ObjectInfo, error) {
	// A listing is many pages: the timeout bounds the wait for the next
	// entry, not the whole listing.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := fmt.Errorf("no answer within %s", b.timeout)
	watchdog := time.AfterFunc(b.timeout, func() { cancel(stall) })
	defer watchdog.Stop()
	var out []ObjectInfo
	for oi := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{
		Prefix:       b.full(prefix),
		Recursive:    true,
		WithVersions: versions,
	}) {
		watchdog.Reset(b.timeout)
		if oi.Err != nil {
			if context.Cause(ctx) == stall {
				return nil, b.fail(op, prefix, stall)
			}
			return nil, b.fail(op, prefix, oi.Err)
		}
		out = append(out, b.info(oi))
	}
	if !versions {
		slices.SortFunc(out, func(a, c ObjectInfo) int { return strings.Compare(a.Key, c.Key) })
	}
	return out, nil
}

// Delete removes key's current version; an absent key is not an error (a
// delete is retried after a crash).
func (b *s3Bucket) Delete(ctx context.Context, key string) error {
	ctx, cancel := b.short(ctx)
	defer cancel()
	if err := b.client.RemoveObject(ctx, b.bucket, b.full(key), minio.RemoveObjectOptions{}); err != nil {
		return b.fail("delete", key, err)
	}
	return nil
}

// DeleteAll lists every version and delete marker under prefix (on an
// unversioned bucket that is every object, with version "null"), deletes
// them by version id in batches (one multi-object DELETE per 1000), and
// lists again, objects and versions, to prove the prefix empty. A listing
// that still finds something is an error: the purge must not report a
// day destroyed that is not.
func (b *s3Bucket) DeleteAll(ctx context.Context, prefix string) (DeleteResult, error) {
	var res DeleteResult
	// On an unversioned bucket a listing of versions names each object's
	// version "null", and some stores delete nothing for that id: delete
	// by key there. On a versioned bucket the "null" version (written
	// before versioning was enabled) must be named, since a plain delete
	// would only add a delete marker above it.
	versioned, err := b.Versioned(ctx)
	if err != nil {
		return res, err
	}
	// Two rounds: a writer racing the purge (an upload retried late) may
	// add a version between the listing and the deletions.
	for round := 0; round < 2; round++ {
		vs, err := b.list(ctx, "delete all: list versions", prefix, true)
		if err != nil {
			return res, err
		}
		if len(vs) == 0 {
			break
		}
		ch := make(chan minio.ObjectInfo, len(vs))
		for i, v := range vs {
			if !versioned && v.VersionID == "null" {
				vs[i].VersionID = ""
			}
			ch <- minio.ObjectInfo{Key: b.full(v.Key), VersionID: vs[i].VersionID}
		}
		close(ch)
		failed := map[string]bool{}
		var firstErr error
		dctx, cancel := b.short(ctx)
		for re := range b.client.RemoveObjects(dctx, b.bucket, ch, minio.RemoveObjectsOptions{}) {
			if re.Err != nil {
				failed[re.ObjectName+"\x00"+re.VersionID] = true
				if firstErr == nil {
					firstErr = b.fail("delete all", strings.TrimPrefix(re.ObjectName, b.prefix), re.Err)
				}
			}
		}
		cancel()
		for _, v := range vs {
			if failed[b.full(v.Key)+"\x00"+v.VersionID] {
				continue
			}
			if v.DeleteMarker {
				res.Markers++
			} else {
				res.Objects++
				res.Bytes += v.Size
			}
		}
		if firstErr != nil {
			return res, firstErr
		}
	}
	left, err := b.list(ctx, "delete all: verify versions", prefix, true)
	if err != nil {
		return res, err
	}
	cur, err := b.list(ctx, "delete all: verify", prefix, false)
	if err != nil {
		return res, err
	}
	if n := len(left) + len(cur); n > 0 {
		return res, b.fail("delete all", prefix, fmt.Errorf("%d objects or versions still listed after deleting", n))
	}
	res.Verified = true
	return res, nil
}

// Versioned asks the bucket's versioning configuration: enabled or
// suspended (a suspended bucket keeps the versions it made) is true.
func (b *s3Bucket) Versioned(ctx context.Context) (bool, error) {
	ctx, cancel := b.short(ctx)
	defer cancel()
	vc, err := b.client.GetBucketVersioning(ctx, b.bucket)
	if err != nil {
		return false, b.fail("get versioning", "", err)
	}
	return vc.Status == "Enabled" || vc.Status == "Suspended", nil
}
