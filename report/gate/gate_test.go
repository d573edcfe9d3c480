package gate_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/report"
	. "github.com/benchmq/bench/report/gate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		metric string
		op     string
		value  float64
		kind   Kind
	}{
		{"lost == 0", "lost", "==", 0, Count},
		{"duplicates <= 10", "duplicates", "<=", 10, Count},
		{"retries != 3", "retries", "!=", 3, Count},
		{"succeeded > 99", "succeeded", ">", 99, Count},
		{"tid_mismatches>=0", "tid_mismatches", ">=", 0, Count},
		{"p99(end_to_end) < 2s", "p99(end_to_end)", "<", 2, Duration},
		{"p999(publish_confirm) < 100ms", "p999(publish_confirm)", "<", 0.1, Duration},
		{"max(processing) < 1s", "max(processing)", "<", 1, Duration},
		{"mean(processing) < 250us", "mean(processing)", "<", 250e-6, Duration},
		{"p50(processing) < 250µs", "p50(processing)", "<", 250e-6, Duration},
		{"p90(processing) < 10ns", "p90(processing)", "<", 10e-9, Duration},
		{"p90(processing) < 1.5m", "p90(processing)", "<", 90, Duration},
		{"max(processing) > 0", "max(processing)", ">", 0, Duration},
		{"drain_seconds < 60", "drain_seconds", "<", 60, Duration},
		{"drain_seconds < 2m", "drain_seconds", "<", 120, Duration},
		{"breaker.open_seconds <= 5", "breaker_open_seconds", "<=", 5, Duration},
		{"peak(worker_rss) < 200MiB", "peak(worker_rss)", "<", 200 << 20, Size},
		{"peak(worker_heap) < 1GiB", "peak(worker_heap)", "<", 1 << 30, Size},
		{"peak(worker_heap) < 2KiB", "peak(worker_heap)", "<", 2048, Size},
		{"peak(worker_heap) < 3KB", "peak(worker_heap)", "<", 3000, Size},
		{"peak(worker_heap) < 3MB", "peak(worker_heap)", "<", 3e6, Size},
		{"peak(worker_heap) < 3GB", "peak(worker_heap)", "<", 3e9, Size},
		{"peak(worker_heap) < 512B", "peak(worker_heap)", "<", 512, Size},
		{"peak(worker_rss) < 1000", "peak(worker_rss)", "<", 1000, Size},
		{"peak(queue_ready) <= 10000", "peak(queue_ready)", "<=", 10000, Count},
		{"throughput.complete_per_s >= 500", "complete_per_s", ">=", 500, Rate},
		{"complete_per_s >= 1e3", "complete_per_s", ">=", 1000, Rate},
		{"publish_per_s > 0.5", "publish_per_s", ">", 0.5, Rate},
		{"  late_sends == 0  ", "late_sends", "==", 0, Count},
		{"breaker_opened <= -1", "breaker_opened", "<=", -1, Count},
		{"p99( end_to_end ) < 2s", "p99(end_to_end)", "<", 2, Duration},
	}
	for _, tt := range tests {
		e, err := Parse(tt.in, report.Catalog)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if e.Metric != tt.metric || e.Op != tt.op || e.Kind != tt.kind || math.Abs(e.Value-tt.value) > 1e-12*math.Max(1, tt.value) {
			t.Errorf("Parse(%q) = %+v, want metric %s op %s value %v kind %v", tt.in, e, tt.metric, tt.op, tt.value, tt.kind)
		}
		if e.Source != tt.in {
			t.Errorf("Parse(%q).Source = %q", tt.in, e.Source)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in  string
		col int
		msg string
	}{
		{"", 1, "expected a metric name"},
		{"< 3", 1, "expected a metric name"},
		{"p99(e2e) < 2s", 1, `unknown metric p99(e2e); want one of p99(end_to_end), p99(publish_confirm), p99(processing)`},
		{"lsot == 0", 1, "unknown metric lsot; did you mean lost?"},
		{"frobnicate == 0", 1, "unknown metric frobnicate"},
		{"peak(rss) < 1MiB", 1, `unknown metric peak(rss); want one of peak(worker_rss)`},
		{"p99(end_to_end < 2s", 20, "missing ) after metric argument"},
		{"lost 0", 6, "expected an operator"},
		{"lost = 0", 6, `unknown operator "="`},
		{"lost =< 0", 6, `unknown operator "=<"`},
		{"lost ==", 8, "expected a number"},
		{"lost == abc", 9, "expected a number"},
		{"lost == 1.2.3", 9, `bad number "1.2.3"`},
		{"lost == 5 and more", 11, `unexpected "and more"`},
		{"lost == 5ms", 10, `lost is a count: the threshold is a bare number, not "ms"`},
		{"complete_per_s >= 5/s", 20, `complete_per_s is a rate: the threshold is a bare number, not "/s"`},
		{"p99(end_to_end) < 2", 19, "p99(end_to_end) is a duration: the threshold needs a unit"},
		{"p99(end_to_end) < 2MiB", 20, `unit "MiB" is not one of ns, us, ms, s, m`},
		{"drain_seconds < 2h", 18, `unit "h" is not one of`},
		{"peak(worker_rss) < 200MB/s", 23, `unit "MB/s" is not one of B, KiB`},
		{"peak(worker_rss) < 2s", 21, `peak(worker_rss) is a size: unit "s"`},
		{"p50(processing) < 1e", 20, `unit "e"`},
		{"µ == 1", 1, "expected a metric name"},
		{"lost == 1e999", 9, `bad number "1e999"`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in, report.Catalog)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want a *SyntaxError", tt.in, err)
			continue
		}
		if se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Parse(%q) = column %d: %s\nwant column %d: …%s…", tt.in, se.Col, se.Msg, tt.col, tt.msg)
		}
	}
}

func TestEval(t *testing.T) {
	values := map[string]float64{"lost": 0, "p99(end_to_end)": 1.5, "complete_per_s": 500}
	lookup := func(m string) (float64, bool) { v, ok := values[m]; return v, ok }
	tests := []struct {
		in   string
		pass bool
	}{
		{"lost == 0", true}, {"lost == 1", false},
		{"lost != 0", false}, {"lost != 1", true},
		{"p99(end_to_end) < 2s", true}, {"p99(end_to_end) < 1500ms", false},
		{"p99(end_to_end) <= 1500ms", true}, {"p99(end_to_end) <= 1s", false},
		{"p99(end_to_end) > 1s", true}, {"p99(end_to_end) > 1500ms", false},
		{"complete_per_s >= 500", true}, {"complete_per_s >= 501", false},
	}
	for _, tt := range tests {
		e, err := Parse(tt.in, report.Catalog)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		pass, v, err := e.Eval(lookup)
		if err != nil {
			t.Fatalf("Eval(%q): %v", tt.in, err)
		}
		if pass != tt.pass || v != values[e.Metric] {
			t.Errorf("Eval(%q) = %v, %v; want %v, %v", tt.in, pass, v, tt.pass, values[e.Metric])
		}
	}
	e, err := Parse("duplicates == 0", report.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Eval(lookup); !errors.Is(err, ErrMissing) {
		t.Errorf("Eval of a missing metric: err = %v, want ErrMissing", err)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		expr string
		v    float64
		want string
	}{
		{"p99(end_to_end) < 1s", 1.5, "1.5s"},
		{"p99(end_to_end) < 1s", 0.0123, "12.3ms"},
		{"p99(end_to_end) < 1s", 0.000250, "250µs"},
		{"peak(worker_rss) < 1MiB", 150 << 20, "150MiB"},
		{"peak(worker_rss) < 1MiB", 12, "12B"},
		{"lost == 0", 3, "3"},
	}
	for _, tt := range tests {
		e, err := Parse(tt.expr, report.Catalog)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.FormatValue(tt.v); got != tt.want {
			t.Errorf("FormatValue(%v) for %s = %q, want %q", tt.v, tt.expr, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"lost == 0", "p99(end_to_end) < 2s", "peak(worker_rss) < 200MiB",
		"drain_seconds < 60", "throughput.complete_per_s >= 500", "p999(publish_confirm) < 100µs",
		"max(processing", "x", "lost == 1e5", "lost==-.5e-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s, report.Catalog)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Col < 1 || se.Col > len([]rune(s))+1 {
				t.Fatalf("Parse(%q) error %v has no column within the expression", s, err)
			}
			return
		}
		if _, _, ok := report.Catalog.Resolve(e.Metric); !ok || math.IsNaN(e.Value) {
			t.Fatalf("Parse(%q) = %+v: unknown metric or NaN", s, e)
		}
	})
}
