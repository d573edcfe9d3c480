package proxy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Stream directions a toxic applies to.
const (
	StreamUp   = "up"   // client → upstream
	StreamDown = "down" // upstream → client
	StreamBoth = "both" // two toxics, one per direction
)

// Toxic describes a toxiproxy toxic. Attribute values are in toxiproxy's units:
// milliseconds for times (latency, jitter, delay, timeout), KB/s for rate,
// bytes for bytes, average_size and size_variation, microseconds for the
// slicer's delay.
type Toxic struct {
	Name string // unique on its proxy; required
	Type string // latency | bandwidth | slow_close | timeout | reset_peer | slicer | limit_data
	// Stream is up, down or both; "" means down, as in toxiproxy.
	Stream string
	// Toxicity is the probability that a connection is affected, decided per
	// connection. 0 means 1 (every connection), as in toxiproxy.
	Toxicity float32
	Attrs    map[string]int64
}

// toxicAttrs lists the attributes each toxic type accepts. Toxiproxy ignores
// unknown attributes silently; a misspelt one would turn a fault into a no-op.
var toxicAttrs = map[string][]string{
	"latency":    {"latency", "jitter"},
	"bandwidth":  {"rate"},
	"slow_close": {"delay"},
	"timeout":    {"timeout"},
	"reset_peer": {"timeout"},
	"slicer":     {"average_size", "size_variation", "delay"},
	"limit_data": {"bytes"},
}

// ToxicTypes returns the supported toxic types, sorted.
func ToxicTypes() []string {
	types := make([]string, 0, len(toxicAttrs))
	for t := range toxicAttrs {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// ToxicAttrs returns the attribute names a toxic type accepts, or nil for an
// unknown type.
func ToxicAttrs(typ string) []string {
	return slices.Clone(toxicAttrs[typ])
}

// Validate reports every problem with t at once.
func (t Toxic) Validate() error {
	var errs []error
	if t.Name == "" {
		errs = append(errs, errors.New("toxic name is empty"))
	}
	allowed, ok := toxicAttrs[t.Type]
	if !ok {
		errs = append(errs, fmt.Errorf("unknown toxic type %q (want one of %s)", t.Type, strings.Join(ToxicTypes(), ", ")))
	}
	switch t.Stream {
	case "", StreamUp, StreamDown, StreamBoth:
	default:
		errs = append(errs, fmt.Errorf("toxic %q: stream %q is not up, down or both", t.Name, t.Stream))
	}
	if t.Toxicity < 0 || t.Toxicity > 1 {
		errs = append(errs, fmt.Errorf("toxic %q: toxicity %v is outside [0, 1]", t.Name, t.Toxicity))
	}
	if ok {
		keys := make([]string, 0, len(t.Attrs))
		for k := range t.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !slices.Contains(allowed, k) {
				errs = append(errs, fmt.Errorf("toxic %q: %s has no attribute %q (want %s)", t.Name, t.Type, k, strings.Join(allowed, ", ")))
			}
			if t.Attrs[k] < 0 {
				errs = append(errs, fmt.Errorf("toxic %q: attribute %s is negative", t.Name, k))
			}
		}
	}
	return errors.Join(errs...)
}

// directions returns the toxiproxy streams t expands to.
func (t Toxic) directions() []string {
	switch t.Stream {
	case StreamUp:
		return []string{"upstream"}
	case StreamBoth:
		return []string{"upstream", "downstream"}
	default:
		return []string{"downstream"}
	}
}

// toxicity returns the probability toxiproxy should use.
func (t Toxic) toxicity() float32 {
	if t.Toxicity == 0 {
		return 1
	}
	return t.Toxicity
}

// DurationUnit returns the unit in which toxiproxy takes attribute attr of
// toxic type typ, for attributes that are durations: milliseconds, except
// the slicer's delay, which is in microseconds. ok is false for attributes
// that are not durations (rate, bytes, sizes) or unknown.
func DurationUnit(typ, attr string) (unit time.Duration, ok bool) {
	if !slices.Contains(toxicAttrs[typ], attr) {
		return 0, false
	}
	switch {
	case typ == "slicer" && attr == "delay":
		return time.Microsecond, true
	case attr == "latency", attr == "jitter", attr == "delay", attr == "timeout":
		return time.Millisecond, true
	}
	return 0, false
}
