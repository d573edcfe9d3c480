package report

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// The report opens with the answer, names each warning once per variant,
// folds many warnings and variant sections, and lays the matrix out in the
// file's key order.
func TestCapacityHTML(t *testing.T) {
	r := capacityResult(t)
	w := "the broker blocked publishers"
	r.Variants[0].Warnings = []string{w, w}
	var b bytes.Buffer
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if n := strings.Count(html, "Variant "+r.Variants[0].Name+": "+w); n != 1 {
		t.Errorf("the repeated warning appears %d times, want once", n)
	}
	capAt, gatesAt := strings.Index(html, `id="capacity"`), strings.Index(html, "<h2>Gates</h2>")
	if capAt < 0 || capAt > gatesAt {
		t.Errorf("capacity section at %d, gates at %d: the answer must come first", capAt, gatesAt)
	}
	for _, want := range []string{`<details class="warnings"><summary>8 warnings in 8 variants</summary>`,
		`<h4>workers.processes = 1</h4>`, `workers.concurrency ↓ workers.prefetch →`,
		`class="hm meets star"`, `<details class="vsec" id="v-7">`} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %s", want)
		}
	}
}

// Variant names may shorten matrix keys to their last segment; the heat
// map still takes the keys in the names' order.
func TestHeatMapKeyOrderFromShortNames(t *testing.T) {
	var vs []Variant
	for _, p := range []int{1, 2} {
		for _, c := range []int{8, 32} {
			vs = append(vs, Variant{Name: "processes=" + strconv.Itoa(p) + ",concurrency=" + strconv.Itoa(c),
				Params: map[string]any{"workers.processes": p, "workers.concurrency": c}})
		}
	}
	keys, vals := matrixValues(vs)
	if strings.Join(keys, " ") != "workers.processes workers.concurrency" || strings.Join(vals["workers.concurrency"], " ") != "8 32" {
		t.Errorf("keys %q values %q", keys, vals)
	}
	hm := heatMaps(&Result{Variants: vs}, "")
	if len(hm) != 1 || hm[0].RowKey != "workers.processes" || hm[0].ColKey != "workers.concurrency" || hm[0].Rows[1].Cells[0].Anchor != "#v-2" {
		t.Errorf("heat map %+v", hm)
	}
}
