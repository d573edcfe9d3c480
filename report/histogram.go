package report

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency kinds: the keys of Variant.Histograms and the names of the .hgrm files.
const (
	KindEndToEnd       = "end_to_end"
	KindPublishConfirm = "publish_confirm"
	KindProcessing     = "processing"
)

// Kinds lists the latency kinds in report order.
func Kinds() []string { return []string{KindEndToEnd, KindPublishConfirm, KindProcessing} }

// Histogram geometry shared by everything that records latencies: values in
// microseconds from 1 µs to 1 h, 3 significant digits.
const (
	HistogramLowestUS  = 1
	HistogramHighestUS = int64(3600 * 1e6)
	HistogramSigFigs   = 3
)

// NewHistogram returns an empty latency histogram with the shared geometry.
// Histograms are not goroutine-safe: use one per goroutine and Merge them.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramLowestUS, HistogramHighestUS, HistogramSigFigs)
}

// Summarize reduces a histogram of microseconds to a Summary in milliseconds.
// A nil or empty histogram gives the zero Summary.
func Summarize(h *hdrhistogram.Histogram) Summary {
	if h == nil || h.TotalCount() == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Summary{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// EncodeHistogram encodes h in the HdrHistogram V2 compressed format, base64,
// as stored in Variant.Histograms.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		return "", fmt.Errorf("encode histogram: nil histogram")
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram is the inverse of EncodeHistogram.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// WriteHgrm writes h (microseconds) as an HdrHistogram percentile distribution
// in milliseconds: the text layout of the Java implementation's
// outputPercentileDistribution, which HdrHistogram's plotFiles.html and
// other tools read. hdrhistogram-go's PercentilesPrint uses a different header
// and column widths, so the layout is written here.
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	const scale = 1000.0 // µs -> ms
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	if h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			q := b.Quantile / 100
			v := float64(b.ValueAt) / scale
			if b.Quantile == 100 {
				fmt.Fprintf(bw, "%12.3f %2.12f %10d\n", v, q, b.Count)
				continue
			}
			fmt.Fprintf(bw, "%12.3f %2.12f %10d %14.2f\n", v, q, b.Count, 1/(1-q))
		}
	}
	mean, std := 0.0, 0.0
	if h.TotalCount() > 0 {
		mean, std = h.Mean()/scale, h.StdDev()/scale
	}
	buckets, subBuckets := geometry(h)
	fmt.Fprintf(bw, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean, std)
	fmt.Fprintf(bw, "#[Max     = %12.3f, Total count    = %12d]\n", float64(h.Max())/scale, h.TotalCount())
	fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write hgrm: %w", err)
	}
	return nil
}

// geometry recomputes the bucket and sub-bucket counts the footer reports;
// hdrhistogram-go does not export them.
func geometry(h *hdrhistogram.Histogram) (buckets, subBuckets int64) {
	sig := max(1, min(5, int(h.SignificantFigures())))
	subMag := int64(math.Ceil(math.Log2(2 * math.Pow10(sig))))
	subBuckets = int64(1) << subMag
	unitMag := int64(0)
	if l := h.LowestTrackableValue(); l > 1 {
		unitMag = int64(math.Floor(math.Log2(float64(l))))
	}
	untrackable := subBuckets << unitMag
	buckets = 1
	for untrackable <= h.HighestTrackableValue() {
		if untrackable > math.MaxInt64/2 {
			return buckets + 1, subBuckets
		}
		untrackable <<= 1
		buckets++
	}
	return buckets, subBuckets
}

// SpectrumPoint is one point of a percentile spectrum: the value (ms) at the
// percentile whose 1/(1-p) is X.
type SpectrumPoint struct {
	Percentile float64 `json:"p"`
	X          float64 `json:"x"`
	ValueMS    float64 `json:"v"`
}

// Spectrum computes the percentile spectrum of h (microseconds) in
// milliseconds at HdrHistogram's percentile ticks (5 per half distance), the
// last point being the maximum placed at 1/(1-p) = total count.
func Spectrum(h *hdrhistogram.Histogram) []SpectrumPoint {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	var pts []SpectrumPoint
	lastX := 1.0
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		if b.Quantile >= 100 {
			x := math.Max(float64(h.TotalCount()), lastX*2)
			pts = append(pts, SpectrumPoint{Percentile: 100, X: x, ValueMS: float64(b.ValueAt) / 1000})
			break
		}
		x := 1 / (1 - b.Quantile/100)
		lastX = x
		pts = append(pts, SpectrumPoint{Percentile: b.Quantile, X: x, ValueMS: float64(b.ValueAt) / 1000})
	}
	return pts
}
