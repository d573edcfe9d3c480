package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"
)

func collect(t *testing.T, phases []Phase) []Job {
	t.Helper()
	var jobs []Job
	s := NewSchedule(phases)
	for {
		j, ok := s.Next()
		if !ok {
			break
		}
		jobs = append(jobs, j)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next yielded a job after the schedule ended")
	}
	return jobs
}

func TestSteadySchedule(t *testing.T) {
	jobs := collect(t, []Phase{{Kind: KindSteady, Rate: 200, For: time.Second, Size: 10}})
	if len(jobs) != 200 {
		t.Fatalf("got %d jobs, want 200", len(jobs))
	}
	for i, j := range jobs {
		if want := time.Duration(i) * 5 * time.Millisecond; j.Offset != want {
			t.Fatalf("job %d at %s, want %s", i, j.Offset, want)
		}
		if j.Index != int64(i) || j.Phase != 0 || j.Size != 10 || j.Spike {
			t.Fatalf("job %d = %+v", i, j)
		}
	}
}

func TestRampSchedule(t *testing.T) {
	p := Phase{Kind: KindRamp, From: 100, To: 1000, Over: 2 * time.Second}
	jobs := collect(t, []Phase{p})
	if len(jobs) != 1100 {
		t.Fatalf("got %d jobs, want 1100", len(jobs))
	}
	for i := 1; i < len(jobs); i++ {
		if jobs[i].Offset < jobs[i-1].Offset {
			t.Fatalf("job %d at %s before job %d at %s", i, jobs[i].Offset, i-1, jobs[i-1].Offset)
		}
	}
	if last := jobs[len(jobs)-1].Offset; last > p.Over {
		t.Fatalf("last job at %s, after the ramp's end", last)
	}
	// Count jobs in 100 ms windows: each must match the integral of the rate
	// over the window (within one job for rounding).
	const win = 100 * time.Millisecond
	counts := make([]int, p.Over/win)
	for _, j := range jobs {
		counts[min(int(j.Offset/win), len(counts)-1)]++
	}
	for w, got := range counts {
		t0, t1 := float64(w)*win.Seconds(), float64(w+1)*win.Seconds()
		rate := func(t float64) float64 { return p.From + (p.To-p.From)*t/p.Over.Seconds() }
		want := (rate(t0) + rate(t1)) / 2 * win.Seconds()
		if math.Abs(float64(got)-want) > 1 {
			t.Errorf("window %d (%.1f–%.1fs): %d jobs, want %.1f", w, t0, t1, got, want)
		}
	}
}

func TestFallingAndFromZeroRamps(t *testing.T) {
	for _, p := range []Phase{
		{Kind: KindRamp, From: 1000, To: 0, Over: time.Second},
		{Kind: KindRamp, From: 0, To: 1000, Over: time.Second},
		{Kind: KindRamp, From: 300, To: 300, Over: time.Second},
	} {
		jobs := collect(t, []Phase{p})
		if len(jobs) != int(p.Count()) {
			t.Fatalf("%+v: %d jobs, want %d", p, len(jobs), p.Count())
		}
		// Half the jobs of a ramp are sent by the time the cumulative count is half.
		half := jobs[len(jobs)/2].Offset.Seconds()
		k := float64(len(jobs) / 2)
		n := p.From*half + (p.To-p.From)*half*half/(2*p.Over.Seconds())
		if math.Abs(n-k) > 0.5 {
			t.Errorf("%+v: N(%.4fs) = %.2f, want %.0f", p, half, n, k)
		}
		for i, j := range jobs {
			if j.Offset < 0 || j.Offset > p.Over || (i > 0 && j.Offset < jobs[i-1].Offset) {
				t.Fatalf("%+v: job %d at %s", p, i, j.Offset)
			}
		}
	}
}

func TestSpikeAndPhaseOrder(t *testing.T) {
	phases := []Phase{
		{Kind: KindSpike, Jobs: 3, Size: 7},
		{Kind: KindSteady, Rate: 10, For: 500 * time.Millisecond, Size: 1},
		{Kind: KindSpike, Jobs: 2},
		{Kind: KindRamp, From: 10, To: 30, Over: time.Second},
	}
	jobs := collect(t, phases)
	if want := TotalJobs(phases); int64(len(jobs)) != want || want != 3+5+2+20 {
		t.Fatalf("got %d jobs, TotalJobs %d, want 30", len(jobs), want)
	}
	wantPhase := []int{0, 0, 0, 1, 1, 1, 1, 1, 2, 2}
	for i, j := range jobs {
		if j.Index != int64(i) {
			t.Fatalf("job %d has index %d", i, j.Index)
		}
		if i < len(wantPhase) && j.Phase != wantPhase[i] {
			t.Fatalf("job %d in phase %d, want %d", i, j.Phase, wantPhase[i])
		}
		if i >= len(wantPhase) && j.Phase != 3 {
			t.Fatalf("job %d in phase %d, want 3", i, j.Phase)
		}
		if j.Spike != (phases[j.Phase].Kind == KindSpike) || j.Size != phases[j.Phase].Size {
			t.Fatalf("job %d = %+v", i, j)
		}
		if j.Spike && j.Offset != 0 {
			t.Fatalf("spike job %d at %s, want 0", i, j.Offset)
		}
	}
	if jobs[3].Offset != 0 || jobs[4].Offset != 100*time.Millisecond {
		t.Fatalf("steady phase offsets restart at its start: got %s, %s", jobs[3].Offset, jobs[4].Offset)
	}
	if jobs[10].Offset != 0 {
		t.Fatalf("ramp's first job at %s, want 0", jobs[10].Offset)
	}
}

func TestScheduleConstantMemory(t *testing.T) {
	s := NewSchedule([]Phase{{Kind: KindSteady, Rate: 1e6, For: time.Second}, {Kind: KindRamp, From: 0, To: 1e6, Over: time.Second}})
	allocs := testing.AllocsPerRun(1000, func() { s.Next() })
	if allocs != 0 {
		t.Fatalf("Next allocates %.1f times per job", allocs)
	}
	n := int64(1000 + 1) // AllocsPerRun calls it once more to warm up
	for {
		if _, ok := s.Next(); !ok {
			break
		}
		n++
	}
	if n != 1_500_000 {
		t.Fatalf("1M + 500k jobs scheduled as %d", n)
	}
}

func TestPhaseValidate(t *testing.T) {
	cases := []struct {
		p    Phase
		want string // "" = valid
	}{
		{Phase{Kind: KindSpike, Jobs: 1}, ""},
		{Phase{Kind: KindSpike}, "jobs must be positive"},
		{Phase{Kind: KindSteady, Rate: 0, For: time.Second}, "rate must be positive"},
		{Phase{Kind: KindSteady, Rate: 1, For: 0}, "for must be positive"},
		{Phase{Kind: KindSteady, Rate: 1, For: time.Millisecond}, "schedules no jobs"},
		{Phase{Kind: KindRamp, From: -1, To: 5, Over: time.Second}, "not negative"},
		{Phase{Kind: KindRamp, From: 1, To: 5}, "over must be positive"},
		{Phase{Kind: "burst"}, `unknown kind "burst"`},
		{Phase{Kind: KindSpike, Jobs: 1, Size: -1}, "size must not be negative"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", c.p, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one containing %q", c.p, err, c.want)
		}
	}
}
