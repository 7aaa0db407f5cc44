package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/testkit"
)

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
	testkit.Golden(t, "testdata/frames.golden", out.Bytes())
}
