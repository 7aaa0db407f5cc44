// Package buildinfo says which build of retentiond is running: the version
// and commit stamped in at link time, with a fall-back to what the Go
// toolchain recorded, and a retentiond_build_info metric so dashboards can
// tell which version each daemon runs.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/retentiond/retentiond/internal/buildinfo.Version=v1.2.0 \
//	  -X github.com/retentiond/retentiond/internal/buildinfo.Commit=$(git rev-parse HEAD)" ./cmd/retentiond
//
// When they are empty, Get falls back to runtime/debug.ReadBuildInfo, which
// knows the module version for `go install ...@v1.2.0` and the VCS revision
// for builds from a checkout.
var (
	Version string
	Commit  string
)

// Info describes the running binary.
type Info struct {
	Version   string // "v1.2.0", or "devel" when unknown
	Commit    string // VCS revision, "-dirty" appended for modified trees; "unknown" when unknown
	GoVersion string // "go1.26.8"
}

// Get returns the build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(Version, Commit, bi)
}

func get(version, commit string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			var rev string
			var modified bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if rev != "" && modified {
				rev += "-dirty"
			}
			info.Commit = rev
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// Register adds retentiond_build_info{version, revision, goversion} with the
// constant value 1 to reg, following the Prometheus convention for build
// information.
func Register(reg prometheus.Registerer) error {
	info := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "retentiond_build_info",
		Help:        "A metric with a constant '1' value labelled by the version, revision and Go version retentiond was built from.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Commit, "goversion": info.GoVersion},
	})
	g.Set(1)
	return reg.Register(g)
}
