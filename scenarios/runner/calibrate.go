package runner

import (
	"context"

	"github.com/benchmq/bench/internal/perf"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/report"
)

// The calibration's size: about a second of raw publishing and consuming on
// a small machine, enough for a rate that moves a few per cent between runs.
const (
	calibrationMessages = 2000
	calibrationSize     = 1 << 10
)

// calibrate measures the broker+machine's raw capacity before anything of the
// variant runs, straight to the broker (no proxy, no fault), into a queue of
// its own. A failure is a warning, not the variant's end: the figure only
// qualifies comparisons across machines.
func (v *variantRun) calibrate(ctx context.Context) error {
	c, err := perf.Calibrate(ctx, v.env.directURL, calibrationMessages, calibrationSize)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.warnings = append(v.warnings, "calibration failed, so this result cannot be normalised to another machine: "+redact.Error(err, v.env.directURL).Error())
		return nil
	}
	v.calibration = &report.Calibration{Messages: c.Messages, Size: c.Size, PublishPerS: c.PublishPerS,
		ConsumePerS: c.ConsumePerS, Seconds: c.Elapsed.Seconds()}
	v.log.Info("calibration", "publish_per_s", int(c.PublishPerS), "consume_per_s", int(c.ConsumePerS), "took", c.Elapsed)
	return nil
}
