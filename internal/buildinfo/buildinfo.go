// Package buildinfo says which bench this is: the module version and the
// commit it was built from, as the Go toolchain recorded them in the binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what the toolchain recorded about this binary.
type Info struct {
	Version   string // module version: "v1.2.3" when installed from a tag, "(devel)" when built in a checkout
	Revision  string // VCS commit, "" when not recorded (go test, go run of a file)
	Time      string // commit time, RFC 3339
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
}

// Read returns the build information of the running binary.
func Read() Info {
	i := Info{Version: "(devel)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is one line for `bench --version` and result.json, e.g.
// "bench (devel) 1a2b3c4d5e6f+modified 2025-01-02T03:04:05Z go1.26.0".
func (i Info) String() string {
	parts := []string{"bench", i.Version}
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if i.Modified {
			rev += "+modified"
		}
		parts = append(parts, rev)
		if i.Time != "" {
			parts = append(parts, i.Time)
		}
	}
	return strings.Join(append(parts, i.GoVersion), " ")
}
