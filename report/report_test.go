package report

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSummarize(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 1000; v++ {
		if err := h.RecordValue(v * 1000); err != nil { // 1..1000 ms
			t.Fatal(err)
		}
	}
	s := Summarize(h)
	if s.Count != 1000 {
		t.Errorf("count %d, want 1000", s.Count)
	}
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > want*0.002 {
			t.Errorf("%s = %v, want about %v", name, got, want)
		}
	}
	near("p50", s.P50, 500)
	near("p90", s.P90, 900)
	near("p99", s.P99, 990)
	near("p999", s.P999, 999)
	near("max", s.Max, 1000)
	near("mean", s.Mean, 500.5)
	if (Summarize(nil) != Summary{}) || (Summarize(NewHistogram()) != Summary{}) {
		t.Error("empty histogram: want zero Summary")
	}
}

func TestHistogramRoundTrip(t *testing.T) {
	h := NewHistogram()
	for _, v := range []int64{1, 7, 1500, 250000, 3_000_000, 3_599_000_000} {
		if err := h.RecordValues(v, 3); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHistogram(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(h) {
		t.Errorf("decoded histogram differs: count %d max %d, want %d %d", got.TotalCount(), got.Max(), h.TotalCount(), h.Max())
	}
	if _, err := DecodeHistogram("not base64!"); err == nil {
		t.Error("decode garbage: want an error")
	}
}

// TestHgrmFormat parses the .hgrm back as HdrHistogram's tools read it and
// checks the values against the histogram.
func TestHgrmFormat(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 10000; v++ {
		if err := h.RecordValue(v * 100); err != nil { // 0.1..1000 ms
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := WriteHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&b)
	if !sc.Scan() || strings.Join(strings.Fields(sc.Text()), " ") != "Value Percentile TotalCount 1/(1-Percentile)" {
		t.Fatalf("header %q", sc.Text())
	}
	var rows, footer int
	var lastP, lastV float64
	var lastCount int64
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#["):
			footer++
			if strings.HasPrefix(line, "#[Max") && !strings.Contains(line, "Total count    =        10000]") {
				t.Errorf("footer %q: want total count 10000", line)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 && len(f) != 3 {
			t.Fatalf("row %q: %d fields", line, len(f))
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		n, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("row %q: %v %v %v", line, err1, err2, err3)
		}
		if p < lastP || v < lastV || n < lastCount {
			t.Fatalf("row %q: not monotonic", line)
		}
		if len(f) == 4 {
			inv, err := strconv.ParseFloat(f[3], 64)
			if err != nil || math.Abs(inv-1/(1-p)) > 0.01*inv+0.01 {
				t.Errorf("row %q: 1/(1-p) %v", line, f[3])
			}
		} else if p != 1 {
			t.Errorf("row %q: only the 100%% row has 3 fields", line)
		}
		if p >= 0.5 && lastP < 0.5 && math.Abs(v-500) > 1 {
			t.Errorf("p50 row %q: want about 500 ms", line)
		}
		lastP, lastV, lastCount = p, v, n
		rows++
	}
	if rows < 20 || footer != 3 || lastP != 1 || lastCount != 10000 || math.Abs(lastV-1000) > 1 {
		t.Errorf("rows %d footer %d last p %v count %d value %v", rows, footer, lastP, lastCount, lastV)
	}
	// The footer's geometry must agree with the library's own printout.
	var lib bytes.Buffer
	if _, err := h.PercentilesPrint(&lib, 5, 1000); err != nil {
		t.Fatal(err)
	}
	bk, sub := geometry(h)
	want := fmt.Sprintf("#[Buckets = %12d, SubBuckets     = %12d]", bk, sub)
	if !strings.Contains(lib.String(), want) || bk != 22 || sub != 2048 {
		t.Errorf("geometry %d buckets %d sub-buckets; library says:\n%s", bk, sub, lib.String()[strings.LastIndex(lib.String(), "#[Buckets"):])
	}
}

func TestJUnit(t *testing.T) {
	r := syntheticResult(t)
	r.Variants[1].Gates = append(r.Variants[1].Gates, Gate{Expr: "peak(queue_retry) < 10", Error: "not measured"})
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Error *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("parse junit: %v\n%s", err, b.String())
	}
	if len(doc.Suites) != 2 || doc.Tests != 5 || doc.Failures != 1 {
		t.Fatalf("suites %d tests %d failures %d, want 2 5 1\n%s", len(doc.Suites), doc.Tests, doc.Failures, b.String())
	}
	s0, s1 := doc.Suites[0], doc.Suites[1]
	if s0.Name != "spike/prefetch=10" || s0.Failures != 0 || len(s0.Cases) != 2 {
		t.Errorf("suite 0: %+v", s0)
	}
	if s1.Failures != 1 || s1.Errors != 1 || len(s1.Cases) != 3 {
		t.Errorf("suite 1: %+v", s1)
	}
	c := s1.Cases[1]
	if c.Name != "p99(end_to_end) < 2s" || c.Failure == nil || !strings.Contains(c.Failure.Message, "2500") {
		t.Errorf("failed gate case: %+v", c)
	}
	if s1.Cases[0].Failure != nil || s1.Cases[2].Error == nil {
		t.Errorf("passing case has a failure or unmeasured gate has no error: %+v", s1.Cases)
	}
}

func TestHTMLEscapesRunData(t *testing.T) {
	r := syntheticResult(t)
	r.Scenario.Description = `<script>alert(1)</script>`
	r.Variants[0].Name = `</script><script>alert(2)</script>`
	r.Variants[0].Faults[0].Detail = `<img src=x onerror=alert(3)>`
	var b bytes.Buffer
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, bad := range []string{"<script>alert", "<img src=x"} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains raw %q", bad)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("description is not shown as escaped text")
	}
	for _, want := range []string{`<script type="application/json" id="bench-data">`, `class="matrix"`, "dependency", "p99(end_to_end) &lt; 2s"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// No external fetches: the page must open offline.
	for _, ext := range []string{`src="http`, `href="http`, `src="//`, `@import`} {
		if strings.Contains(html, ext) {
			t.Errorf("report references an external resource: %q", ext)
		}
	}
}

func TestHTMLNonFiniteSeries(t *testing.T) {
	r := syntheticResult(t)
	r.Variants[0].Series["p99_ms"][3] = math.NaN()
	r.Variants[0].Series["p50_ms"][4] = math.Inf(1)
	var b bytes.Buffer
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "json: unsupported") || !strings.Contains(b.String(), "null") {
		t.Error("non-finite samples were not encoded as null")
	}
}

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	r := syntheticResult(t)
	if err := WriteAll(dir, r, r); err != nil {
		t.Fatal(err)
	}
	want := []string{ResultFile, JUnitFile, HTMLFile}
	for _, v := range r.Variants {
		for _, k := range Kinds() {
			want = append(want, HgrmFile(v.Name, k))
		}
	}
	for _, f := range want {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	back, err := ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if back.Variants[1].Histograms[KindEndToEnd] != r.Variants[1].Histograms[KindEndToEnd] {
		t.Error("histogram did not survive result.json")
	}
	html, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte(`class="comparison"`)) || !bytes.Contains(html, []byte("baseline prefetch=10")) {
		t.Error("report with a baseline lacks the comparison or the baseline spectrum")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(matches) > 0 {
		t.Errorf("temp files left: %v", matches)
	}
}

func TestSpectrum(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 1000; v++ {
		if err := h.RecordValue(v * 1000); err != nil {
			t.Fatal(err)
		}
	}
	pts := Spectrum(h)
	if len(pts) < 10 {
		t.Fatalf("%d points", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X <= pts[i-1].X || pts[i].ValueMS < pts[i-1].ValueMS {
			t.Fatalf("point %d %+v after %+v: not increasing", i, pts[i], pts[i-1])
		}
	}
	last := pts[len(pts)-1]
	if last.Percentile != 100 || math.Abs(last.ValueMS-1000) > 1 || last.X < 1000 {
		t.Errorf("last point %+v, want the max (1000 ms) at x >= 1000", last)
	}
	if Spectrum(NewHistogram()) != nil {
		t.Error("empty histogram: want no points")
	}
}

// The generator's accuracy is in the report when the variant has timed sends.
func TestHTMLShowsSendLateness(t *testing.T) {
	r := syntheticResult(t)
	r.Variants[0].Lateness = &Lateness{Summary: Summary{Count: 20000, P50: 0.12, P99: 4.5, P999: 11, Max: 31.25},
		ThresholdMS: 10, Late: 37, LateFraction: 37.0 / 20000}
	var b bytes.Buffer
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	want := "sent 20000 timed jobs; 37 (0.18 %) later than 10.00 ms after their intended time; lateness p50 0.12, p99 4.50, p99.9 11.00, max 31.25 ms"
	if !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q", want)
	}
	r.Variants[0].Lateness = nil
	b.Reset()
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "timed jobs") {
		t.Error("a variant without timed sends shows a lateness line")
	}
}
