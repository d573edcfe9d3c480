package agent

import (
	"fmt"
	"time"
)

// Offset is a peer's clock relative to the runner's, measured NTP-style: the
// peer's clock reads Offset ahead of the runner's, give or take Uncertainty
// (half the probe's round trip, minus the peer's own time in between).
type Offset struct {
	Offset      time.Duration `json:"offset"`
	Uncertainty time.Duration `json:"uncertainty"`
	RTT         time.Duration `json:"rtt"`
	Probes      int           `json:"probes"`
}

// ToPeer converts a time on the runner's clock to the peer's.
func (o Offset) ToPeer(t int64) int64 { return t + int64(o.Offset) }

// FromPeer converts a time on the peer's clock to the runner's.
func (o Offset) FromPeer(t int64) int64 { return t - int64(o.Offset) }

func (o Offset) String() string {
	return fmt.Sprintf("%s ± %s", o.Offset.Round(time.Microsecond), o.Uncertainty.Round(time.Microsecond))
}

// EstimateOffset turns probes (each a Pong completed by T3, when the runner
// received it on its own clock) into the offset of the probe with the
// shortest round trip: queueing delays only lengthen a round trip, so the
// shortest one bounds the offset most tightly.
func EstimateOffset(probes []Pong, t3 []int64) (Offset, error) {
	if len(probes) == 0 || len(probes) != len(t3) {
		return Offset{}, fmt.Errorf("estimate clock offset: %d probes, %d receive times", len(probes), len(t3))
	}
	best := Offset{RTT: -1}
	for i, p := range probes {
		rtt := time.Duration((t3[i] - p.T0) - (p.T2 - p.T1))
		if rtt < 0 {
			rtt = 0
		}
		if best.RTT >= 0 && rtt >= best.RTT {
			continue
		}
		best.RTT = rtt
		best.Offset = time.Duration(((p.T1 - p.T0) + (p.T2 - t3[i])) / 2)
		best.Uncertainty = rtt / 2
	}
	best.Probes = len(probes)
	return best, nil
}
