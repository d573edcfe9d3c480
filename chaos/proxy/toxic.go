package proxy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/benchmq/bench/chaos/fault"
)

// Stream directions a toxic applies to (the fault vocabulary's).
const (
	StreamUp   = fault.StreamUp   // client → upstream
	StreamDown = fault.StreamDown // upstream → client
	StreamBoth = fault.StreamBoth // two toxics, one per direction
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

// Validate reports every problem with t at once.
func (t Toxic) Validate() error {
	var errs []error
	if t.Name == "" {
		errs = append(errs, errors.New("toxic name is empty"))
	}
	typ, ok := fault.LookupToxic(t.Type)
	if !ok {
		errs = append(errs, fmt.Errorf("unknown toxic type %q (want one of %s)", t.Type, strings.Join(fault.ToxicNames(), ", ")))
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
			if _, known := typ.Attr(k); !known {
				errs = append(errs, fmt.Errorf("toxic %q: %s has no attribute %q (want %s)", t.Name, t.Type, k, strings.Join(typ.AttrNames(), ", ")))
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
