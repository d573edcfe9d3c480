package scenarios

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/worker"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestGolden decodes DESIGN.md §4.2's example and compares it with a reviewed golden file.
func TestGolden(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "full.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Variants()
	if err != nil {
		t.Fatal(err)
	}
	type golden struct {
		Scenario *Scenario
		Variants []string
	}
	g := golden{Scenario: s}
	for _, v := range vs {
		g.Variants = append(g.Variants, v.Name)
	}
	saved, eff := s.Source, s.Effective
	s.Source, s.Effective = nil, nil // bytes: Source is the file, Effective is checked by TestEffectiveScenario
	got, err := json.MarshalIndent(g, "", "  ")
	s.Source, s.Effective = saved, eff
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "full.golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("decoded scenario differs from %s (run with -update and review the diff):\n%s", path, got)
	}
	if len(s.SHA256) != 64 || !bytes.Equal(s.Source, mustRead(t, "testdata/full.yaml")) {
		t.Errorf("SHA256 %q / Source not recorded", s.SHA256)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaults(t *testing.T) {
	s, err := Parse("s.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Workers{
		Processes: 1, Concurrency: 1, Prefetch: 10, Timeout: 30 * time.Second, Burst: 1,
		Retry:   worker.RetryPolicy{MaxAttempts: 5, MinDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Jitter: true, Mode: "broker"},
		Breaker: worker.BreakerConfig{FailureRatio: 0.5, MinRequests: 20, OpenFor: 5 * time.Second, Window: 10 * time.Second},
	}
	if !reflect.DeepEqual(s.Workers, want) {
		t.Errorf("Workers = %+v, want %+v", s.Workers, want)
	}
	if s.App != "bench" || s.Queue.Type != "classic" || s.DrainTimeout != 120*time.Second || s.SeedSet {
		t.Errorf("App %q, Queue %q, DrainTimeout %s, SeedSet %v", s.App, s.Queue.Type, s.DrainTimeout, s.SeedSet)
	}
	if s.Job.Work != (Dist{Kind: DistFixed}) || s.Load[0].Size != 1024 {
		t.Errorf("Work %+v, Size %d", s.Job.Work, s.Load[0].Size)
	}
	vs, err := s.Variants()
	if err != nil || len(vs) != 1 || vs[0].Name != "default" || len(vs[0].Params) != 0 || vs[0].Scenario != s {
		t.Errorf("Variants() = %+v, %v; want one default variant", vs, err)
	}
}

func TestExplicitZeroPrefetch(t *testing.T) {
	s, err := Parse("s.yaml", []byte(base+"workers: {prefetch: 0}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Workers.Prefetch != 0 {
		t.Errorf("Prefetch = %d, want an explicit 0 kept", s.Workers.Prefetch)
	}
}

func TestSet(t *testing.T) {
	doc := base + "workers:\nmatrix:\n  workers.concurrency: [1, 2]\n"
	s, err := Parse("s.yaml", []byte(doc), []string{
		"workers.prefetch=0",
		"job.work=10ms",
		"workers.retry.max_attempts=3",
		"load.0.spike.jobs=100",
		"load.0.spike.size=64KiB",
		"job.work={dist: lognormal, p50: 5ms, p99: 50ms}", // the last one wins
		"gates=[lost == 0, 'p99(end_to_end) < 2s']",
		"baseline.thresholds.p99(end_to_end)=25%",
		"matrix.workers.timeout=[1s, 2s]",
		"description=a b=c",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Workers.Prefetch != 0 || s.Workers.Retry.MaxAttempts != 3 || s.Load[0].Jobs != 100 || s.Load[0].Size != 64<<10 {
		t.Errorf("sets not applied: %+v %+v", s.Workers, s.Load[0])
	}
	if s.Job.Work != (Dist{Kind: DistLognormal, P50: 5 * time.Millisecond, P99: 50 * time.Millisecond}) {
		t.Errorf("Work = %+v", s.Job.Work)
	}
	if len(s.Gates) != 2 || s.Gates[1].Expr.Metric != "p99(end_to_end)" || s.Gates[0].Pos.Set != "gates" {
		t.Errorf("Gates = %+v", s.Gates)
	}
	if s.Baseline.Thresholds["p99(end_to_end)"] != 0.25 {
		t.Errorf("Thresholds = %v", s.Baseline.Thresholds)
	}
	if s.Description != "a b=c" {
		t.Errorf("Description = %q", s.Description)
	}
	var keys []string
	for _, ax := range s.Matrix {
		keys = append(keys, ax.Key)
	}
	if !slices.Equal(keys, []string{"workers.concurrency", "workers.timeout"}) {
		t.Errorf("matrix keys = %v", keys)
	}
	if s.Source == nil || !bytes.Equal(s.Source, []byte(doc)) {
		t.Error("Source is not the file's bytes")
	}
}

func TestSetPinsMatrixKey(t *testing.T) {
	doc := base + "matrix:\n  workers.prefetch: [0, 10]\n  workers.concurrency: [1, 2]\n"
	s, err := Parse("s.yaml", []byte(doc), []string{"workers.prefetch=50"})
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Variants()
	if len(vs) != 2 || vs[0].Name != "workers.concurrency=1" || vs[1].Scenario.Workers.Prefetch != 50 {
		t.Errorf("variants = %v", names(vs))
	}
}

func names(vs []Variant) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestVariants(t *testing.T) {
	doc := base + `workers: {prefetch: 5}
job: {work: 1ms}
load:
  - spike: {jobs: 10}
matrix:
  workers.prefetch: [0, 100]
  workers.concurrency: [1, 8]
  job.work: [2ms, {dist: exponential, mean: 3ms}]
  load.0.spike.size: [4KiB]
`
	doc = strings.Replace(doc, "load:\n  - spike: {jobs: 10}\n", "", 1) // base already has load
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Variants()
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{
		"prefetch=0,concurrency=1,work=2ms,size=4KiB",
		"prefetch=0,concurrency=1,work=v2,size=4KiB",
		"prefetch=0,concurrency=8,work=2ms,size=4KiB",
		"prefetch=0,concurrency=8,work=v2,size=4KiB",
		"prefetch=100,concurrency=1,work=2ms,size=4KiB",
		"prefetch=100,concurrency=1,work=v2,size=4KiB",
		"prefetch=100,concurrency=8,work=2ms,size=4KiB",
		"prefetch=100,concurrency=8,work=v2,size=4KiB",
	}
	if got := names(vs); !slices.Equal(got, wantNames) {
		t.Fatalf("names =\n%v\nwant\n%v", got, wantNames)
	}
	v := vs[3].Scenario
	if v.Workers.Prefetch != 0 || v.Workers.Concurrency != 8 || v.Job.Work.Kind != DistExponential || v.Load[0].Size != 4096 {
		t.Errorf("variant 3 = %+v %+v %+v", v.Workers, v.Job.Work, v.Load[0])
	}
	if v.Matrix != nil || v.Name != "t" || v.SHA256 != s.SHA256 {
		t.Errorf("variant scenario: Matrix %v, Name %q", v.Matrix, v.Name)
	}
	if s.Workers.Prefetch != 5 || s.Job.Work.Fixed != time.Millisecond {
		t.Errorf("the base scenario changed: %+v", s.Workers)
	}
	wantParams := map[string]any{"workers.prefetch": 100, "workers.concurrency": 1, "job.work": "2ms", "load.0.spike.size": "4KiB"}
	if !reflect.DeepEqual(vs[4].Params, wantParams) {
		t.Errorf("Params = %#v, want %#v", vs[4].Params, wantParams)
	}
	if !slices.Equal(vs[4].ParamOrder, []string{"workers.prefetch", "workers.concurrency", "job.work", "load.0.spike.size"}) {
		t.Errorf("ParamOrder = %v", vs[4].ParamOrder)
	}
	again, _ := v.Variants()
	if len(again) != 1 || again[0].Scenario != v {
		t.Errorf("a variant's Variants() = %v, want itself", names(again))
	}
}

func TestVariantNames(t *testing.T) {
	doc := base + "matrix:\n  workers.retry.min_delay: [1ms]\n  dependency.latency: [1ms]\n  load.0.spike.size: ['1 KiB', '1 KiB']\n"
	doc2 := base + "matrix:\n  workers.retry.jitter: [false]\n  dependency.jitter: [1ms]\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Variants()
	// Distinct last segments give short labels; names that collide get a suffix.
	want := []string{"min_delay=1ms,latency=1ms,size=1_KiB", "min_delay=1ms,latency=1ms,size=1_KiB-2"}
	if got := names(vs); !slices.Equal(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
	s, err = Parse("s.yaml", []byte(doc2), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ = s.Variants()
	want = []string{"workers.retry.jitter=false,dependency.jitter=1ms"}
	if got := names(vs); !slices.Equal(got, want) {
		t.Errorf("names with colliding last segments = %v, want %v", got, want)
	}
	safe := regexp.MustCompile(`^[A-Za-z0-9._=,-]+$`)
	for _, v := range vs {
		if !safe.MatchString(v.Name) {
			t.Errorf("name %q is not filesystem-safe", v.Name)
		}
	}
}

func TestFaults(t *testing.T) {
	doc := `name: t
task: bench.job.process
job: {dependency_calls: 1}
load:
  - steady: {rate: 100/s, for: 30s}
faults:
  - {at: 1s, for: 2s, target: dependency, toxic: latency, latency: 1s, jitter: 250ms, toxicity: 0.5}
  - {at: 1s, for: 2s, target: broker, toxic: bandwidth, rate: 1MB/s, stream: both}
  - {at: 1s, for: 2s, target: broker, toxic: slicer, average_size: 1KiB, size_variation: 100, delay: 10us, stream: up}
  - {at: 1s, for: 2s, target: broker, toxic: slow_close, delay: 20ms}
  - {at: 1s, for: 2s, target: broker, toxic: limit_data, bytes: 64KiB}
  - {at: 1s, target: broker, toxic: reset_peer}
  - {at: 1s, target: broker, toxic: timeout, timeout: 2s}
  - {at: 1s, for: 2s, target: worker, action: pause}
  - {at: 1s, target: worker, action: stop}
  - {at: 1s, for: 2s, target: broker, action: block}
  - {at: 1s, for: 2s, target: broker, down: true}
`
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		kind   string
		attrs  map[string]int64
		stream string
		dur    time.Duration
	}
	want := []got{
		{"latency", map[string]int64{"latency": 1000, "jitter": 250}, "", 2 * time.Second},
		{"bandwidth", map[string]int64{"rate": 1000}, "both", 2 * time.Second},
		{"slicer", map[string]int64{"average_size": 1024, "size_variation": 100, "delay": 10}, "up", 2 * time.Second},
		{"slow_close", map[string]int64{"delay": 20}, "", 2 * time.Second},
		{"limit_data", map[string]int64{"bytes": 65536}, "", 2 * time.Second},
		{"reset_peer", nil, "", 0}, // brief: held for fault.BriefWindow
		{"timeout", map[string]int64{"timeout": 2000}, "", 0},
		{"pause", nil, "", 2 * time.Second},
		{"stop", nil, "", 0},
		{"block", nil, "", 2 * time.Second},
		{"down", nil, "", 2 * time.Second},
	}
	if len(s.Faults) != len(want) {
		t.Fatalf("%d faults, want %d", len(s.Faults), len(want))
	}
	for i, w := range want {
		f := s.Faults[i]
		if f.Kind() != w.kind || !reflect.DeepEqual(f.Attrs, w.attrs) || f.Stream != w.stream || f.For != w.dur {
			t.Errorf("fault %d = %+v, want %+v", i, f, w)
		}
		if f.Pos.Line != 7+i || f.Pos.Col != 5 {
			t.Errorf("fault %d at %s, want line %d col 5", i, f.Pos, 7+i)
		}
	}
	if s.Faults[5].Hold() != fault.BriefWindow || s.Faults[6].Hold() != fault.BriefWindow {
		t.Errorf("brief faults hold %v, %v", s.Faults[5].Hold(), s.Faults[6].Hold())
	}
	if s.Faults[0].Toxicity != 0.5 || s.Faults[1].Toxicity != 0 {
		t.Errorf("toxicity = %v, %v", s.Faults[0].Toxicity, s.Faults[1].Toxicity)
	}
}

func TestTotals(t *testing.T) {
	doc := "name: t\ntask: bench.job.process\nload:\n  - spike: {jobs: 10}\n  - steady: {rate: 12000/m, for: 30s}\n  - ramp: {from: 0, to: 100/s, over: 10s}\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.TotalJobs(); got != 10+6000+500 {
		t.Errorf("TotalJobs = %d, want 6510", got)
	}
	if got := s.LoadDuration(); got != 40*time.Second {
		t.Errorf("LoadDuration = %s, want 40s", got)
	}
}

func TestEventScenario(t *testing.T) {
	doc := "name: ev\napp: billing\nevent: org.payment.processed\nqueue: {type: quorum}\nload:\n  - spike: {jobs: 1}\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.App != "billing" || s.Event != "org.payment.processed" || s.Task != "" || s.Queue.Type != "quorum" {
		t.Errorf("got app %q event %q task %q queue %q", s.App, s.Event, s.Task, s.Queue.Type)
	}
}

func TestBaselineAndChaos(t *testing.T) {
	doc := base + "baseline: {file: base.json, max_regression: 15%, min_samples: 100, thresholds: {throughput.complete_per_s: 0.1}}\nchaos: {toxiproxy_url: 'http://127.0.0.1:8474'}\n"
	s, err := Parse(filepath.Join("dir", "s.yaml"), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Baseline
	if b.File != "base.json" || math.Abs(b.MaxRegression-0.15) > 1e-12 || b.MinSamples != 100 || b.Thresholds["throughput.complete_per_s"] != 0.1 {
		t.Errorf("Baseline = %+v", b)
	}
	if s.Chaos.ToxiproxyURL != "http://127.0.0.1:8474" {
		t.Errorf("Chaos = %+v", s.Chaos)
	}
}

func TestUnits(t *testing.T) {
	sizes := map[string]int64{"512B": 512, "4KiB": 4096, "64KiB": 65536, "1MiB": 1 << 20, "1.5MiB": 3 << 19, "2GiB": 2 << 30, "3KB": 3000, "2MB": 2e6, "1GB": 1e9, "100": 100, "0": 0, "1 KiB": 1024}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "4kib", "4 KiBs", "-1KiB", "1.5B", "1e3", "0x10", "NaN", "inf", "4TB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
	rates := map[string]float64{"200/s": 200, "12000/m": 200, "12000/min": 200, "3600/h": 1, "1/ms": 1000, "0.5": 0.5, "7": 7, "0/s": 0}
	for in, want := range rates {
		if got, err := parseRate(in); err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/s", "200/d", "fast", "-1/s", "NaN/s", "1e300/ms"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) succeeded", in)
		}
	}
	durs := map[string]time.Duration{"250ms": 250 * time.Millisecond, "2s": 2 * time.Second, "1m30s": 90 * time.Second, "0": 0, "1h": time.Hour}
	for in, want := range durs {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "1.5", "2 s", "-1s", "1d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
	fracs := map[string]float64{"15%": 0.15, "0.15": 0.15, "0": 0, "1": 1, "150%": 1.5}
	for in, want := range fracs {
		if got, err := parseFraction(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("parseFraction(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"15", "-1%", "x%", "", "NaN"} {
		if _, err := parseFraction(in); err == nil {
			t.Errorf("parseFraction(%q) succeeded", in)
		}
	}
}

func TestDistSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	if got := (Dist{Kind: DistFixed, Fixed: 5 * time.Millisecond}).Sample(r); got != 5*time.Millisecond {
		t.Errorf("fixed sample = %s", got)
	}
	if got := (Dist{}).Sample(r); got != 0 {
		t.Errorf("zero Dist sample = %s", got)
	}
	const n = 20000
	quantile := func(d Dist, q float64) time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = d.Sample(r)
		}
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[int(q*n)]
	}
	mean := func(d Dist) float64 {
		var sum float64
		for range n {
			sum += float64(d.Sample(r))
		}
		return sum / n
	}
	exp := Dist{Kind: DistExponential, Mean: 10 * time.Millisecond}
	if m := mean(exp); math.Abs(m/float64(exp.Mean)-1) > 0.05 {
		t.Errorf("exponential mean = %v, want ≈ %s", time.Duration(m), exp.Mean)
	}
	ln := Dist{Kind: DistLognormal, P50: 5 * time.Millisecond, P99: 50 * time.Millisecond}
	if p50 := quantile(ln, 0.5); math.Abs(float64(p50)/float64(ln.P50)-1) > 0.05 {
		t.Errorf("lognormal p50 = %s, want ≈ %s", p50, ln.P50)
	}
	if p99 := quantile(ln, 0.99); math.Abs(float64(p99)/float64(ln.P99)-1) > 0.15 {
		t.Errorf("lognormal p99 = %s, want ≈ %s", p99, ln.P99)
	}
	if m := mean(ln); math.Abs(m/float64(ln.MeanDuration())-1) > 0.1 {
		t.Errorf("lognormal mean = %v, MeanDuration = %s", time.Duration(m), ln.MeanDuration())
	}
	if got := (Dist{Kind: DistLognormal, P50: time.Millisecond, P99: time.Millisecond}).Sample(nil); got != time.Millisecond {
		t.Errorf("lognormal with p99 = p50 = %s, want 1ms", got)
	}
}

var posRe = regexp.MustCompile(`^(f\.yaml:[1-9]\d*:[1-9]\d*|--set .+?): \S`)

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/full.yaml", "testdata/minimal.yaml"} {
		f.Add(string(mustReadF(f, p)), "workers.prefetch=5")
	}
	f.Add(base+"matrix:\n  workers.prefetch: [0, 1, x]\n", "matrix.job.work=[1ms, {dist: exponential}]")
	f.Add(base+"faults:\n  - {at: 1s, target: broker, toxic: latency}\n", "load.0=1")
	f.Add(base+"gates: [p99(end_to_end) < 2, a: &x [*x]]\n", "gates.0=")
	f.Add("a: &a [*a, *a]\nb: *a\n", "=")
	f.Add("{", "a.b.c.d=[")
	f.Fuzz(func(t *testing.T, doc, set string) {
		s, err := Parse("f.yaml", []byte(doc), []string{set})
		if err == nil {
			if _, verr := s.Variants(); verr != nil {
				t.Fatalf("Variants: %v", verr)
			}
			return
		}
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		for _, e := range es {
			if !posRe.MatchString(e.Error()) {
				t.Fatalf("error without a position: %q", e.Error())
			}
		}
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func TestGateWhen(t *testing.T) {
	src := `
name: w
task: bench.job.process
load: [{spike: {jobs: 10}}]
matrix: {workers.prefetch: [0, 10]}
gates:
  - lost == 0
  - {expr: "peak(worker_rss) < 64MiB", when: {workers.prefetch: 10}}
`
	s, err := Parse("w.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Variants()
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, v := range vs {
		for _, g := range v.Scenario.Gates {
			if ok, _ := v.Scenario.GateApplies(g, v.Params); ok {
				applied = append(applied, v.Name+": "+g.Source)
			}
		}
	}
	want := []string{"workers.prefetch=0: lost == 0", "workers.prefetch=10: lost == 0", "workers.prefetch=10: peak(worker_rss) < 64MiB"}
	if strings.Join(applied, "|") != strings.Join(want, "|") {
		t.Fatalf("applied %q, want %q", applied, want)
	}
	_, err = Parse("w.yaml", []byte(strings.Replace(src, `when: {workers.prefetch: 10}`, `when: {workers.prefetch: [10]}, extra: 1`, 1)), nil)
	if err == nil || !strings.Contains(err.Error(), "w.yaml:8:") || !strings.Contains(err.Error(), "unknown key extra") || !strings.Contains(err.Error(), "must be a matrix value") {
		t.Fatalf("err = %v", err)
	}
}
