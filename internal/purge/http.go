package purge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// reportDay is one day of a Report on the wire.
type reportDay struct {
	Day       string     `json:"day"` // YYYY-MM-DD (UTC)
	Records   int64      `json:"records"`
	Bytes     int64      `json:"bytes"`
	MinTime   *time.Time `json:"min_time,omitempty"`
	MaxTime   *time.Time `json:"max_time,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
	Files     int        `json:"files"`
	// KeyID is the id of the day key the purge destroyed (encryption at
	// rest; docs/encryption.md): every copy of the day is unreadable.
	KeyID string `json:"key_id,omitempty"`
	// Holds are the ids of the legal holds that kept the day (held days
	// only).
	Holds []string `json:"holds,omitempty"`
}

// reportJSON is a Report on the wire: snake_case keys, days as YYYY-MM-DD,
// the duration in seconds.
type reportJSON struct {
	DryRun          bool         `json:"dry_run"`
	Startup         bool         `json:"startup,omitempty"`
	Trigger         string       `json:"trigger,omitempty"`
	Result          string       `json:"result,omitempty"`
	Now             time.Time    `json:"now"`
	Retention       string       `json:"retention"`
	Days            []reportDay  `json:"days"`
	Records         int64        `json:"records"`
	Bytes           int64        `json:"bytes"`
	DurationSeconds float64      `json:"duration_seconds"`
	Extra           []PurgeStats `json:"extra,omitempty"`
	NextExpiry      *time.Time   `json:"next_expiry,omitempty"`
	// Held are the expired days legal holds kept, with the holds' ids.
	Held []reportDay `json:"held"`
	// Remote is the bucket step (absent without object storage).
	Remote             *remoteJSON `json:"remote,omitempty"`
	OldestRecordBefore *time.Time  `json:"oldest_record_before,omitempty"`
	OldestRecordAfter  *time.Time  `json:"oldest_record_after,omitempty"`
}

// remoteJSON is a RemoteReport on the wire.
type remoteJSON struct {
	Store     string `json:"store"`
	Node      string `json:"node"`
	Versioned bool   `json:"versioned"`
	// Skipped and By: why the bucket was left alone and by whom (see
	// SkipLeaseHeld, SkipAlreadyDone); At is the lease's expiry or the
	// recorded run's time.
	Skipped string          `json:"skipped,omitempty"`
	By      string          `json:"by,omitempty"`
	At      *time.Time      `json:"at,omitempty"`
	Days    []remoteDayJSON `json:"days"`
	Held    []reportDay     `json:"held"`
	Objects int64           `json:"objects"`
	Bytes   int64           `json:"bytes"`
	Markers int64           `json:"delete_markers"`
	// Remaining are the expired days left in the bucket for the next run.
	Remaining []string `json:"expired_days_remaining"`
	Error     string   `json:"error,omitempty"`
}

// remoteDayJSON is one day destroyed in the bucket. Proof is the sentence
// a reader of the signed report looks for: the prefix was listed again
// after the deletions and nothing was left.
type remoteDayJSON struct {
	Day      string `json:"day"`
	Prefix   string `json:"prefix"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
	Markers  int    `json:"delete_markers"`
	Verified bool   `json:"verified"`
	Proof    string `json:"proof"`
}

// proofEmpty is remoteDayJSON.Proof of a verified day.
const proofEmpty = "listed again: empty"

func wireRemote(p Policy, r *RemoteReport) *remoteJSON {
	if r == nil {
		return nil
	}
	j := &remoteJSON{Store: r.Store, Node: r.Node, Versioned: r.Versioned, Skipped: r.Skipped, By: r.By,
		At: timePtr(r.At), Days: make([]remoteDayJSON, 0, len(r.Days)), Held: make([]reportDay, 0, len(r.Held)),
		Objects: r.Objects, Bytes: r.Bytes, Markers: r.Markers, Remaining: make([]string, 0, len(r.Remaining)),
		Error: r.Error}
	for _, d := range r.Days {
		proof := "not verified"
		if d.Verified {
			proof = proofEmpty
		}
		j.Days = append(j.Days, remoteDayJSON{Day: record.DayString(d.Day), Prefix: objstore.DayPrefix(d.Day),
			Objects: d.Objects, Bytes: d.Bytes, Markers: d.Markers, Verified: d.Verified, Proof: proof})
	}
	for _, h := range r.Held {
		j.Held = append(j.Held, wireDay(p, h.DayInfo, h.Holds))
	}
	for _, d := range r.Remaining {
		j.Remaining = append(j.Remaining, record.DayString(d))
	}
	return j
}

func (j *remoteJSON) report() (*RemoteReport, error) {
	if j == nil {
		return nil, nil
	}
	r := &RemoteReport{Store: j.Store, Node: j.Node, Versioned: j.Versioned, Skipped: j.Skipped, By: j.By,
		Objects: j.Objects, Bytes: j.Bytes, Markers: j.Markers, Error: j.Error}
	if j.At != nil {
		r.At = *j.At
	}
	for _, d := range j.Days {
		day, err := record.ParseDay(d.Day)
		if err != nil {
			return nil, fmt.Errorf("purge report: remote: %w", err)
		}
		r.Days = append(r.Days, RemoteDay{Day: day, Objects: d.Objects, Bytes: d.Bytes, Markers: d.Markers,
			Verified: d.Verified})
	}
	for _, d := range j.Held {
		in, err := d.info()
		if err != nil {
			return nil, err
		}
		r.Held = append(r.Held, HeldDay{DayInfo: in, Holds: d.Holds})
	}
	for _, s := range j.Remaining {
		day, err := record.ParseDay(s)
		if err != nil {
			return nil, fmt.Errorf("purge report: remote: %w", err)
		}
		r.Remaining = append(r.Remaining, day)
	}
	return r, nil
}

func wireDay(p Policy, d store.DayInfo, holds []string) reportDay {
	return reportDay{
		Day: record.DayString(d.Day), Records: d.Records, Bytes: d.Bytes,
		MinTime: timePtr(d.MinTime), MaxTime: timePtr(d.MaxTime), ExpiresAt: p.ExpiresAt(d.Day),
		Files: d.Files, KeyID: d.KeyID, Holds: holds,
	}
}

func (d reportDay) info() (store.DayInfo, error) {
	day, err := record.ParseDay(d.Day)
	if err != nil {
		return store.DayInfo{}, fmt.Errorf("purge report: %w", err)
	}
	in := store.DayInfo{Day: day, Records: d.Records, Bytes: d.Bytes, Files: d.Files, KeyID: d.KeyID}
	if d.MinTime != nil {
		in.MinTime = *d.MinTime
	}
	if d.MaxTime != nil {
		in.MaxTime = *d.MaxTime
	}
	return in, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// MarshalJSON writes the report in the form of the purge API.
func (r Report) MarshalJSON() ([]byte, error) {
	p := Policy{Retention: r.Retention}
	j := reportJSON{
		DryRun: r.DryRun, Startup: r.Startup, Result: r.Result, Now: r.Now.UTC(),
		Retention: r.Retention.String(), Days: make([]reportDay, 0, len(r.Days)),
		Records: r.Records, Bytes: r.Bytes, DurationSeconds: r.Duration.Seconds(),
		Extra: r.Extra, NextExpiry: timePtr(r.NextExpiry), Trigger: r.Trigger,
		Held: make([]reportDay, 0, len(r.Held)), Remote: wireRemote(p, r.Remote),
		OldestRecordBefore: timePtr(r.OldestBefore), OldestRecordAfter: timePtr(r.OldestAfter),
	}
	for _, d := range r.Days {
		j.Days = append(j.Days, wireDay(p, d, nil))
	}
	for _, h := range r.Held {
		j.Held = append(j.Held, wireDay(p, h.DayInfo, h.Holds))
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a report written by MarshalJSON (the CLI uses it).
func (r *Report) UnmarshalJSON(b []byte) error {
	var j reportJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	ret, err := policy.ParseRetention(j.Retention)
	if err != nil {
		return fmt.Errorf("purge report: %w", err)
	}
	out := Report{
		DryRun: j.DryRun, Startup: j.Startup, Result: j.Result, Now: j.Now, Retention: ret,
		Records: j.Records, Bytes: j.Bytes, Duration: time.Duration(j.DurationSeconds * float64(time.Second)),
		Extra: j.Extra, Trigger: j.Trigger,
	}
	if j.NextExpiry != nil {
		out.NextExpiry = *j.NextExpiry
	}
	if j.OldestRecordBefore != nil {
		out.OldestBefore = *j.OldestRecordBefore
	}
	if j.OldestRecordAfter != nil {
		out.OldestAfter = *j.OldestRecordAfter
	}
	for _, d := range j.Days {
		in, err := d.info()
		if err != nil {
			return err
		}
		out.Days = append(out.Days, in)
	}
	for _, d := range j.Held {
		in, err := d.info()
		if err != nil {
			return err
		}
		out.Held = append(out.Held, HeldDay{DayInfo: in, Holds: d.Holds})
	}
	if out.Remote, err = j.Remote.report(); err != nil {
		return err
	}
	*r = out
	return nil
}

// ServeHTTP is the handler of POST /api/v1/admin/purge?dry_run=true|false
// [&force=true]. It answers 200 with the JSON report; 409 when the run was
// refused by purge.max_days_per_run; 500 when the run failed (with the
// partial report); 503 after Stop. Authentication (an admin token) is the
// caller's job: mount it behind the auth middleware.
func (s *Scheduler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST", nil)
		return
	}
	q := r.URL.Query()
	dry, err := boolParam(q.Get("dry_run"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "dry_run: "+err.Error(), nil)
		return
	}
	force, err := boolParam(q.Get("force"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "force: "+err.Error(), nil)
		return
	}
	rep, err := s.Run(r.Context(), RunOptions{DryRun: dry, Force: force})
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, rep)
	case errors.Is(err, ErrRefused):
		writeError(w, http.StatusConflict, err.Error(), &rep)
	case errors.Is(err, ErrStopped):
		writeError(w, http.StatusServiceUnavailable, "the daemon is shutting down", nil)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away while waiting; nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
	default:
		var partial *Report
		if rep.Result != "" {
			partial = &rep
		}
		writeError(w, http.StatusInternalServerError, err.Error(), partial)
	}
}

// boolParam reads an optional boolean query parameter; absent is false.
func boolParam(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", record.Shorten(v))
	}
	return b, nil
}

// writeError writes the API's {"error": "..."} answer, with the report of a
// run that was refused or failed part-way when there is one.
func writeError(w http.ResponseWriter, status int, msg string, rep *Report) {
	httpx.WriteJSON(w, status, struct {
		Error  string  `json:"error"`
		Report *Report `json:"report,omitempty"`
	}{msg, rep})
}
