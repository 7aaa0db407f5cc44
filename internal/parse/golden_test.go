package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestFramesGolden parses testdata/frames.txt and compares the records (or
// errors) with testdata/frames.golden; go test -run Golden -update rewrites it.
func TestFramesGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/frames.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		rec, err := ParseSyslog(line)
		if err != nil {
			fmt.Fprintf(&out, "%d\terror (%s): %v\n", n, Reason(err), err)
			continue
		}
		b, _ := json.Marshal(map[string]string{"time": rec.Time.Format(time.RFC3339Nano), "domain": rec.Domain,
			"path": rec.Path, "user_agent": rec.UserAgent, "ip": rec.IP.String()})
		fmt.Fprintf(&out, "%d\t%s\n", n, b)
	}
	if *update {
		if err := os.WriteFile("testdata/frames.golden", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/frames.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from testdata/frames.golden (run with -update and review the diff):\n%s", out.String())
	}
}
