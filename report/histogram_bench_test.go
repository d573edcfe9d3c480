package report

import (
	"fmt"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latencies is a spread of microsecond values like a run's end-to-end latencies:
// sub-millisecond to seconds, so recording touches many buckets.
func latencies() []int64 {
	vs := make([]int64, 4096)
	v := uint64(1)
	for i := range vs {
		v = v*6364136223846793005 + 1442695040888963407
		vs[i] = 1 + int64((v>>33)%5_000_000)
	}
	return vs
}

// BenchmarkHistogramRecord is the cost of one latency sample in the shared
// geometry (1 µs to 1 h, 3 significant figures), which the runner pays two or
// three times per job.
func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	vs := latencies()
	b.ReportAllocs()
	b.ReportMetric(float64(h.ByteSize()), "bytes/histogram")
	i := 0
	for b.Loop() {
		if err := h.RecordValue(vs[i&(len(vs)-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkHistogramNew is the cost of a histogram, which matters where one is
// made per connection or per second of a run (the runner's per-second
// end-to-end histograms use 2 significant figures).
func BenchmarkHistogramNew(b *testing.B) {
	for _, sig := range []int{2, 3} {
		b.Run(fmt.Sprintf("sig%d", sig), func(b *testing.B) {
			b.ReportAllocs()
			var h *hdrhistogram.Histogram
			for b.Loop() {
				h = hdrhistogram.New(HistogramLowestUS, HistogramHighestUS, sig)
			}
			b.ReportMetric(float64(h.ByteSize()), "bytes/histogram")
		})
	}
}

// BenchmarkHistogramMerge is the end-of-run merge of per-connection histograms.
func BenchmarkHistogramMerge(b *testing.B) {
	src := NewHistogram()
	for _, v := range latencies() {
		_ = src.RecordValue(v)
	}
	dst := NewHistogram()
	b.ReportAllocs()
	for b.Loop() {
		dst.Merge(src)
	}
}
