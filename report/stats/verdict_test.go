package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// lognormal draws n values around median with a relative spread sigma: the
// shape of run-to-run noise of a latency or a CPU figure.
func lognormal(rng *rand.Rand, n int, median, sigma float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(sigma*rng.NormFloat64())
	}
	return out
}

func TestJudgeKnownVerdicts(t *testing.T) {
	limit15 := Options{Limit: 0.15}
	for _, c := range []struct {
		name      string
		base, cur []float64
		o         Options
		want      Verdict
	}{
		{"same values", []float64{10, 11, 12, 10, 11}, []float64{11, 10, 12, 11, 10}, limit15, NoChange},
		{"clear 40 % regression", []float64{10, 10.5, 9.8, 10.2, 9.9}, []float64{14, 14.2, 13.8, 14.5, 13.9}, limit15, Regressed},
		{"clear 40 % drop, higher is better", []float64{10, 10.5, 9.8, 10.2, 9.9}, []float64{6, 6.2, 5.8, 6.5, 5.9},
			Options{Limit: 0.15, Better: HigherIsBetter}, Regressed},
		{"clear 40 % rise, higher is better", []float64{10, 10.5, 9.8, 10.2, 9.9}, []float64{14, 14.2, 13.8, 14.5, 13.9},
			Options{Limit: 0.15, Better: HigherIsBetter}, Improved},
		{"clear improvement", []float64{14, 14.2, 13.8, 14.5, 13.9}, []float64{10, 10.5, 9.8, 10.2, 9.9}, limit15, Improved},
		{"significant but within the limit", []float64{10, 10.1, 10.2, 10.3, 10.4}, []float64{11, 11.1, 11.2, 11.3, 11.4}, limit15, NoChange},
		{"beyond the limit, below the floor", []float64{1, 1, 1, 1, 1}, []float64{3, 3, 3, 3, 3}, Options{Limit: 0.15, Floor: 5}, NoChange},
		// A doubling measured once against three runs cannot be told from noise.
		{"1 against 3: nothing can be significant", []float64{10}, []float64{20, 21, 19}, limit15, Inconclusive},
		{"3 against 3: nothing can be significant", []float64{10, 10, 10}, []float64{20, 21, 19}, limit15, Inconclusive},
		// Medians 100 v 120 but the samples overlap: noise, not a regression.
		{"overlapping noisy samples", []float64{100, 130, 70, 110, 90}, []float64{120, 80, 150, 115, 140}, limit15, Inconclusive},
		{"zero baseline, above the floor", []float64{0, 0, 0, 0, 0}, []float64{40, 42, 41, 39, 40}, Options{Limit: 0.15, Floor: 10}, Regressed},
	} {
		got := Judge(c.base, c.cur, c.o)
		if got.Verdict != c.want {
			t.Errorf("%s: %s (%s), want %s; %+v", c.name, got.Verdict, got.Reason, c.want, got)
		}
	}
}

func TestJudgeNumbers(t *testing.T) {
	o := Judge([]float64{10, 10, 10, 10, 10}, []float64{14, 14, 14, 14, 14}, Options{Limit: 0.15})
	if o.BaseMedian != 10 || o.NewMedian != 14 || o.Shift.Estimate != 4 || !near(o.Change, 0.4, 1e-12) {
		t.Errorf("numbers: %+v", o)
	}
	if !o.Shift.HasCI || !near(o.ChangeLow, 0.4, 1e-12) || !near(o.ChangeHigh, 0.4, 1e-12) {
		t.Errorf("interval of constant samples: %+v", o)
	}
	if o.N != 5 || o.M != 5 || o.Test.P > 0.01 || o.Reason == "" {
		t.Errorf("test: %+v", o)
	}
	if z := Judge([]float64{0, 0}, []float64{1, 1}, Options{}); !math.IsInf(z.Change, 1) {
		t.Errorf("change from a zero baseline = %v, want +Inf", z.Change)
	}
}

// The gate's two rates on simulated runs: 5 baseline runs against 5 new ones
// with 8 % run-to-run noise. Unchanged code fails at most 1 % of the time; a
// 40 % regression is caught at least 99 % of the time.
func TestJudgeFalseAlarmAndPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 19))
	const trials, n, noise = 2000, 5, 0.08
	o := Options{Limit: 0.15}
	var alarms, caught int
	for range trials {
		base := lognormal(rng, n, 100, noise)
		if Judge(base, lognormal(rng, n, 100, noise), o).Verdict == Regressed {
			alarms++
		}
		if Judge(base, lognormal(rng, n, 140, noise), o).Verdict == Regressed {
			caught++
		}
	}
	if rate := float64(alarms) / trials; rate > 0.01 {
		t.Errorf("false alarms on unchanged values: %.2f %%", rate*100)
	}
	if rate := float64(caught) / trials; rate < 0.99 {
		t.Errorf("a 40 %% regression caught in %.2f %% of trials", rate*100)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{Limit: 0.15, Floor: 1, Alpha: 0.05}).Validate(); err != nil {
		t.Errorf("good options: %v", err)
	}
	err := Options{Limit: -1, Floor: math.NaN(), Alpha: 1}.Validate()
	if err == nil {
		t.Fatal("bad options: no error")
	}
	for _, want := range []string{"limit", "floor", "alpha"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
