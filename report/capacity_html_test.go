package report

import (
	"bytes"
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
