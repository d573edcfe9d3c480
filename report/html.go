package report

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/benchmq/bench/internal/maxrate"
)

// The charting library is vendored (see assets/VERSION) and inlined so that
// report.html opens offline.
var (
	//go:embed assets/uPlot.iife.min.js
	uplotJS string
	//go:embed assets/uPlot.min.css
	uplotCSS string
	//go:embed report.html.tmpl
	reportTmpl string
)

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":          func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"num":         func(v float64) string { return formatNum(v) },
	"bytes":       func(v int64) string { return formatBytes(float64(v)) },
	"secs":        formatSeconds,
	"secsp":       func(v *float64) string { return formatSeconds(*v) },
	"metric":      FormatMetric,
	"change":      FormatChange,
	"join":        strings.Join,
	"indent":      indentJSON,
	"mulf":        func(x float64) float64 { return x * 100 },
	"changeCI":    formatChangeCI,
	"pValue":      formatP,
	"verdictText": formatVerdict,
	"checkText":   checkText,
	// vname lets a long variant name wrap after its commas, not inside a value.
	"vname": func(name string) template.HTML {
		parts := strings.Split(name, ",")
		for i, p := range parts {
			parts[i] = template.HTMLEscapeString(p)
		}
		return template.HTML(strings.Join(parts, ",<wbr>"))
	},
	"cpuPer1k": func(v Variant) string {
		if x, ok := Lookup(&v)("cpu_per_1k_jobs"); ok {
			return FormatMetric("cpu_per_1k_jobs", x)
		}
		return ""
	},
	"deltaClass": func(d MetricDelta) string {
		switch {
		case d.Failed():
			return "fail"
		case d.Verdict == VerdictImproved:
			return "pass"
		}
		return "l"
	},
}).Parse(reportTmpl))

// RenderHTML writes the self-contained HTML report of r to w. baseline may be
// nil; when given, its latency spectra are overlaid and a comparison is shown.
func RenderHTML(w io.Writer, r *Result, baseline *Result) error {
	p, err := buildPage(r, baseline)
	if err != nil {
		return err
	}
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

// page is everything the template shows. Tables are rendered in Go; the
// chart data goes into the page as JSON (Data) that the script parses.
type page struct {
	R           *Result
	Baseline    *Result
	Comparison  *Comparison
	CompareErr  string
	Matrix      []matrixRow
	ParamKeys   []string
	MatrixCols  []string
	Data        pageData
	UPlotJS     template.JS
	UPlotCSS    template.CSS
	Title       string
	HasFaults   bool
	Kinds       []string
	LedgerCols  []string
	LedgerRows  []ledgerRow
	LatencyRows []latencyRow
	// LatencyGroups are the latency rows by variant, each collapsible;
	// OpenLatency opens them all (a few variants).
	LatencyGroups []latencyGroup
	OpenLatency   bool
	// Capacity is the answer to the SLO, shown first; nil without one.
	Capacity *capacityView
	// FoldVariants folds the variant sections under their summaries: there
	// are more than foldAbove.
	FoldVariants bool
	// Warnings are each variant's distinct warnings (one per cause),
	// folded under a summary when there are more than foldAbove.
	Warnings     []variantWarnings
	WarningCount int
	FoldWarnings bool
	// Searches are the variants with a max-rate search, in the result's order.
	Searches []searchRow
}

type variantWarnings struct {
	Variant string
	Texts   []string
}

// distinct drops repeated warnings, keeping the first of each.
func distinct(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

type searchRow struct {
	Anchor string
	V      Variant
}

// foldAbove is how many variants a report shows unfolded.
const foldAbove = 4

type latencyGroup struct {
	Variant  string
	Headline string // "end-to-end p99 163.00 ms"
	Rows     []latencyRow
}

type ledgerRow struct {
	Variant string
	Values  []string // "n/a" for a count the variant's mode cannot see
}

type latencyRow struct {
	Variant string
	Kind    string
	S       Summary
}

type matrixCell struct {
	Text string
	Best bool
}

type matrixRow struct {
	Variant string
	Params  []string
	Cells   []matrixCell
}

type pageData struct {
	Variants []pageVariant  `json:"variants"`
	Spectra  []pageSpectrum `json:"spectra"`
}

type pageVariant struct {
	Name   string                `json:"name"`
	Series map[string]jsonFloats `json:"series"`
	Faults []pageFault           `json:"faults"`
	Search *pageSearch           `json:"search,omitempty"`
}

// pageSearch is a max-rate search's rate-vs-p99 curve, sorted by rate.
type pageSearch struct {
	Rate   jsonFloats `json:"rate"`
	Meets  jsonFloats `json:"meets"`  // p99 ms of the steps that met; null elsewhere
	Misses jsonFloats `json:"misses"` // p99 ms of the others
	Knee   float64    `json:"knee"`
	Max    float64    `json:"max"`
}

func searchCurve(s *Search) *pageSearch {
	if s == nil || len(s.Steps) == 0 {
		return nil
	}
	steps := slices.Clone(s.Steps)
	slices.SortStableFunc(steps, func(a, b maxrate.Step) int { return cmp.Compare(a.Rate, b.Rate) })
	ps := &pageSearch{Knee: s.Knee, Max: s.MaxRate}
	for _, st := range steps {
		ps.Rate = append(ps.Rate, st.Rate)
		met, miss := st.P99, math.NaN()
		if !st.Met {
			met, miss = math.NaN(), st.P99
		}
		ps.Meets, ps.Misses = append(ps.Meets, met), append(ps.Misses, miss)
	}
	return ps
}

type pageFault struct {
	At    float64 `json:"at"`
	Until float64 `json:"until"`
	Label string  `json:"label"`
}

type pageSpectrum struct {
	Kind  string     `json:"kind"`
	X     jsonFloats `json:"x"`
	Lines []pageLine `json:"lines"`
}

type pageLine struct {
	Label    string     `json:"label"`
	Baseline bool       `json:"baseline"`
	Y        jsonFloats `json:"y"`
}

// jsonFloats encodes non-finite values (a missing sample) as null, which JSON
// cannot otherwise carry.
type jsonFloats []float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloats) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, ']'), nil
}

var _ json.Marshaler = jsonFloats(nil)

func buildPage(r *Result, baseline *Result) (*page, error) {
	if r == nil {
		return nil, fmt.Errorf("render report: nil result")
	}
	p := &page{
		R: r, Baseline: baseline,
		UPlotJS: template.JS(uplotJS), UPlotCSS: template.CSS(uplotCSS),
		Title: "bench: " + r.Scenario.Name, Kinds: Kinds(),
		LedgerCols: []string{"published", "confirmed", "unconfirmed", "succeeded", "recovered", "dead_lettered",
			"lost", "duplicates", "retries", "redelivered", "tid_mismatches"},
	}
	for _, v := range r.Variants {
		l := v.Ledger
		row := ledgerRow{Variant: v.Name}
		for i, n := range []int64{l.Published, l.Confirmed, l.Unconfirmed,
			l.Succeeded, l.Recovered, l.DeadLettered, l.Lost, l.Duplicates, l.Retries, l.Redelivered, l.TIDMismatches} {
			row.Values = append(row.Values, ledgerCell(l, p.LedgerCols[i], n))
		}
		p.LedgerRows = append(p.LedgerRows, row)
		if ws := distinct(v.Warnings); len(ws) > 0 {
			p.Warnings = append(p.Warnings, variantWarnings{Variant: v.Name, Texts: ws})
			p.WarningCount += len(ws)
		}
		g := latencyGroup{Variant: v.Name}
		for _, k := range Kinds() {
			if s := summaryOf(&v, k); s.Count > 0 {
				p.LatencyRows = append(p.LatencyRows, latencyRow{v.Name, k, s})
				g.Rows = append(g.Rows, latencyRow{v.Name, k, s})
			}
		}
		if e := v.LatencyMS.EndToEnd; e.Count > 0 {
			g.Headline = fmt.Sprintf("end-to-end p50 %.2f ms, p99 %.2f ms", e.P50, e.P99)
		}
		p.LatencyGroups = append(p.LatencyGroups, g)
		pv := pageVariant{Name: v.Name, Series: map[string]jsonFloats{}, Faults: []pageFault{}, Search: searchCurve(v.Search)}
		if v.Search != nil {
			p.Searches = append(p.Searches, searchRow{Anchor: "#" + variantAnchor(len(p.Data.Variants)), V: v})
		}
		for k, s := range v.Series {
			pv.Series[k] = jsonFloats(s)
		}
		for _, f := range v.Faults {
			p.HasFaults = true
			pv.Faults = append(pv.Faults, pageFault{At: f.AtS, Until: f.UntilS, Label: faultLabel(f)})
		}
		p.Data.Variants = append(p.Data.Variants, pv)
	}
	p.OpenLatency = len(r.Variants) <= foldAbove
	p.FoldVariants = len(r.Variants) > foldAbove
	p.FoldWarnings = p.WarningCount > foldAbove
	p.Capacity = buildCapacity(r)
	if len(r.Variants) > 1 {
		p.ParamKeys, p.MatrixCols, p.Matrix = matrixTable(r.Variants)
	}
	if baseline != nil {
		c, err := Compare(baseline, r, CompareOptions{})
		if err != nil {
			p.CompareErr = err.Error()
		} else {
			p.Comparison = c
		}
	}
	spectra, err := spectra(r, baseline)
	if err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	p.Data.Spectra = spectra
	return p, nil
}

func summaryOf(v *Variant, kind string) Summary {
	switch kind {
	case KindEndToEnd:
		return v.LatencyMS.EndToEnd
	case KindPublishConfirm:
		return v.LatencyMS.PublishConfirm
	case KindProcessing:
		return v.LatencyMS.Processing
	}
	return Summary{}
}

func faultLabel(f Fault) string {
	s := f.Target + " " + f.Kind
	if f.Node > 0 {
		s += fmt.Sprintf(" on node %d", f.Node)
	}
	if f.Detail != "" {
		s += " (" + f.Detail + ")"
	}
	return s
}

// spectraPerDecade is the resolution of the spectrum's x grid.
const spectraPerDecade = 20

// spectra computes, per latency kind, every variant's (and the baseline's)
// value at percentiles on a shared log grid of 1/(1-p), so that all lines
// share one x axis. A line ends where its histogram runs out of samples.
func spectra(r, baseline *Result) ([]pageSpectrum, error) {
	type hist struct {
		label    string
		baseline bool
		h        *hdrhistogram.Histogram
	}
	var out []pageSpectrum
	for _, kind := range Kinds() {
		var hs []hist
		add := func(res *Result, isBase bool) error {
			for _, v := range res.Variants {
				enc, ok := v.Histograms[kind]
				if !ok {
					continue
				}
				h, err := DecodeHistogram(enc)
				if err != nil {
					return fmt.Errorf("variant %s %s: %w", v.Name, kind, err)
				}
				if h.TotalCount() == 0 {
					continue
				}
				label := v.Name
				if isBase {
					label = "baseline " + v.Name
				}
				hs = append(hs, hist{label, isBase, h})
			}
			return nil
		}
		if err := add(r, false); err != nil {
			return nil, err
		}
		if baseline != nil {
			if err := add(baseline, true); err != nil {
				return nil, err
			}
		}
		if len(hs) == 0 {
			continue
		}
		var maxN int64
		for _, h := range hs {
			maxN = max(maxN, h.h.TotalCount())
		}
		var xs []float64
		for i := 0; ; i++ {
			x := math.Pow(10, float64(i)/spectraPerDecade)
			if x > float64(maxN) {
				break
			}
			xs = append(xs, x)
		}
		s := pageSpectrum{Kind: kind, X: xs}
		for _, h := range hs {
			ys := make(jsonFloats, len(xs))
			for i, x := range xs {
				if x > float64(h.h.TotalCount()) {
					ys[i] = math.NaN()
					continue
				}
				ys[i] = float64(h.h.ValueAtQuantile(100*(1-1/x))) / 1000
			}
			s.Lines = append(s.Lines, pageLine{Label: h.label, Baseline: h.baseline, Y: ys})
		}
		out = append(out, s)
	}
	return out, nil
}

// matrixTable builds the capacity-planning view: one row per variant, the
// best value of every column marked.
func matrixTable(vs []Variant) (keys, cols []string, rows []matrixRow) {
	seen := map[string]bool{}
	for _, v := range vs {
		for k := range v.Params {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	type col struct {
		name   string
		get    func(*Variant) float64
		fmt    func(float64) string
		higher bool
	}
	msf := func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) + " ms" }
	cs := []col{
		{"throughput", func(v *Variant) float64 { return v.Throughput.CompletePerS }, func(x float64) string { return formatNum(x) + "/s" }, true},
		{"p50 e2e", func(v *Variant) float64 { return v.LatencyMS.EndToEnd.P50 }, msf, false},
		{"p99 e2e", func(v *Variant) float64 { return v.LatencyMS.EndToEnd.P99 }, msf, false},
		{"peak RSS", func(v *Variant) float64 { return float64(v.Peak.WorkerRSSBytes) }, formatBytes, false},
		{"CPU per 1k jobs", func(v *Variant) float64 {
			if x, ok := Lookup(v)("cpu_per_1k_jobs"); ok {
				return x
			}
			return math.NaN()
		}, func(x float64) string {
			if math.IsNaN(x) {
				return "n/a"
			}
			return strconv.FormatFloat(x, 'f', 3, 64) + " s"
		}, false},
		{"drain", func(v *Variant) float64 { return v.DrainSeconds }, formatSeconds, false},
		{"retries", func(v *Variant) float64 {
			if !v.Ledger.Observed("retries") {
				return math.NaN()
			}
			return float64(v.Ledger.Retries)
		}, formatNum, false},
		{"lost", func(v *Variant) float64 { return float64(v.Ledger.Lost) }, formatNum, false},
	}
	best := make([]float64, len(cs))
	for i, c := range cs {
		for j := range vs {
			x := c.get(&vs[j])
			if j == 0 || (c.higher && x > best[i]) || (!c.higher && x < best[i]) {
				best[i] = x
			}
		}
		cols = append(cols, c.name)
	}
	for j := range vs {
		row := matrixRow{Variant: vs[j].Name}
		for _, k := range keys {
			if val, ok := vs[j].Params[k]; ok {
				row.Params = append(row.Params, fmt.Sprint(val))
			} else {
				row.Params = append(row.Params, "")
			}
		}
		for i, c := range cs {
			x := c.get(&vs[j])
			row.Cells = append(row.Cells, matrixCell{Text: c.fmt(x), Best: x == best[i]})
		}
		rows = append(rows, row)
	}
	return keys, cols, rows
}

// indentJSON lays a JSON document out for reading; as it is when it is not JSON.
func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// ledgerCell shows a ledger count, or n/a when the mode cannot see it.
func ledgerCell(l Ledger, name string, n int64) string {
	if !l.Observed(name) {
		return "n/a"
	}
	return strconv.FormatInt(n, 10)
}

func formatNum(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func formatBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// formatSeconds formats a duration in seconds.
func formatSeconds(v float64) string {
	return strconv.FormatFloat(v, 'f', 2, 64) + " s"
}
