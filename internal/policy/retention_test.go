package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	ok := []struct {
		in   string
		want Retention
	}{
		{"2y", Retention{Years: 2}},
		{"730d", Retention{Days: 730}},
		{" 1y ", Retention{Years: 1}},
		{"1d", Retention{Days: 1}},
		{"99999d", Retention{Days: 99999}},
	}
	for _, c := range ok {
		t.Run("ok "+c.in, func(t *testing.T) {
			got, err := ParseRetention(c.in)
			if err != nil || got != c.want {
				t.Fatalf("ParseRetention(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
			if back, err := ParseRetention(got.String()); err != nil || back != got {
				t.Errorf("round trip via %q = %v, %v", got.String(), back, err)
			}
		})
	}
	bad := []struct{ in, msg string }{
		{"3x", `retention "3x": use a number of years (2y) or days (730d)`},
		{"", `retention "": use a number of years (2y) or days (730d)`},
		{"y", "use a number of years"},
		{"2", "use a number of years"},
		{"2 y", "use a number of years"},
		{"-2y", "use a number of years"},
		{"+2y", "use a number of years"},
		{"2Y", "use a number of years"},
		{"02y", "use a number of years"},
		{"1.5y", "use a number of years"},
		{"2y3d", "use a number of years"},
		{"0y", "must be longer than zero"},
		{"0d", "must be longer than zero"},
		{"100000d", "at most 99999"},
		{"99999999999999999999y", "at most 99999"},
		{"18m", "months are not supported"},
		{"2h", "use a number of years"},
	}
	for _, c := range bad {
		t.Run("bad "+c.in, func(t *testing.T) {
			_, err := ParseRetention(c.in)
			if err == nil || !strings.Contains(err.Error(), c.msg) || !errors.Is(err, ErrRetention) {
				t.Fatalf("ParseRetention(%q) error = %v, want one containing %q", c.in, err, c.msg)
			}
		})
	}
}

func TestRetentionText(t *testing.T) {
	var r Retention
	if err := r.UnmarshalText([]byte("730d")); err != nil || r != (Retention{Days: 730}) {
		t.Fatalf("UnmarshalText = %v, %v", r, err)
	}
	if err := r.UnmarshalText([]byte("2w")); err == nil {
		t.Fatal("UnmarshalText accepted 2w")
	}
	b, _ := Retention{Years: 2}.MarshalText()
	if string(b) != "2y" {
		t.Errorf("MarshalText = %q", b)
	}
}

func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"2y", "730d", "3x", "", "0y", "99999d", "18m", "02y", " 1y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRetention(s)
		if err != nil {
			if !errors.Is(err, ErrRetention) {
				t.Fatalf("error %v does not match ErrRetention", err)
			}
			return
		}
		if r.IsZero() || r.Years < 0 || r.Days < 0 || (r.Years != 0) == (r.Days != 0) {
			t.Fatalf("ParseRetention(%q) = %+v", s, r)
		}
		back, err := ParseRetention(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q via %q = %+v, %v", s, r.String(), back, err)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRetention(%q) = %+v, which Validate refuses: %v", s, r, err)
		}
		// The arithmetic stays in range for every accepted value.
		day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		if end := r.AddTo(day); !end.After(day) || !r.SubFrom(end).Before(end) {
			t.Fatalf("%s: AddTo(%s) = %s, SubFrom that = %s", s, day, end, r.SubFrom(end))
		}
	})
}

func TestRetentionValidate(t *testing.T) {
	for _, c := range []struct {
		r  Retention
		ok bool
	}{
		{Retention{Years: 2}, true},
		{Retention{Days: 730}, true},
		{Retention{Days: 99999}, true},
		{Retention{}, false},
		{Retention{Years: -1}, false},
		{Retention{Days: -3}, false},
		{Retention{Years: 1, Days: 1}, false},
		{Retention{Days: 100000}, false},
	} {
		t.Run(c.r.String(), func(t *testing.T) {
			err := c.r.Validate()
			if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrRetention) {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", c.r, err, c.ok)
			}
		})
	}
}
