package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGet(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	tests := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            Info
	}{
		{"ldflags win", "v1.2.0", "abc123", vcs("def456", "false"), Info{"v1.2.0", "abc123", runtime.Version()}},
		{"vcs fall-back", "", "", vcs("def456", "false"), Info{"devel", "def456", runtime.Version()}},
		{"dirty tree", "", "", vcs("def456", "true"), Info{"devel", "def456-dirty", runtime.Version()}},
		{"go install @version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, Info{"v1.3.0", "unknown", runtime.Version()}},
		{"nothing known", "", "", nil, Info{"devel", "unknown", runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(tt.version, tt.commit, tt.bi); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	old := Version
	Version, Commit = "v9.9.9", "cafe"
	t.Cleanup(func() { Version, Commit = old, "" })
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	want := `# HELP retentiond_build_info A metric with a constant '1' value labelled by the version, revision and Go version retentiond was built from.
# TYPE retentiond_build_info gauge
retentiond_build_info{goversion="` + runtime.Version() + `",revision="cafe",version="v9.9.9"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "retentiond_build_info"); err != nil {
		t.Error(err)
	}
	if err := Register(reg); err == nil {
		t.Error("registering twice did not fail")
	}
}
