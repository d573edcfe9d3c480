package report

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/benchmq/bench/report/browser"
)

// capacityResult is an 8-cell capacity matrix (processes × concurrency ×
// prefetch) judged against an SLO: the cells with 2 processes meet it.
func capacityResult(t *testing.T) *Result {
	t.Helper()
	base := syntheticResult(t).Variants[0]
	slo := &SLO{Rate: 800, Objectives: []Objective{{Metric: "p99(end_to_end)", Target: 0.25, Source: "250ms"},
		{Metric: "peak(worker_rss)", Target: 128 << 20, Source: "128MiB"}}}
	r := syntheticResult(t)
	r.Scenario.Name, r.Variants, r.SLO = "capacity", nil, slo
	i := 0
	for _, procs := range []int{1, 2} {
		for _, conc := range []int{8, 32} {
			for _, pf := range []int{10, 100} {
				v := cloneForTest(t, &Result{Variants: []Variant{base}}).Variants[0]
				v.Name = fmt.Sprintf("workers.processes=%d,workers.concurrency=%d,workers.prefetch=%d", procs, conc, pf)
				v.Params = map[string]any{"workers.processes": procs, "workers.concurrency": conc, "workers.prefetch": pf}
				v.LatencyMS.EndToEnd.P99 = float64(800/(procs*procs)) - float64(conc) - float64(pf)
				v.WorkerCPUSeconds = float64(20 + conc/4 + i)
				v.Peak.WorkerCPUCores = 0.4 + 0.05*float64(i)
				v.Warnings = []string{"the load generator fell behind schedule: 5372 of 22500 sends were late (worst 1840 ms); latencies are the harness's, not the workers' and a long tail of words that must wrap rather than widen the page"}
				v.SLO = slo.Judge(&v, procs, conc)
				r.Variants = append(r.Variants, v)
				i++
			}
		}
	}
	r.Capacity = PlanCapacity(r)
	return r
}

type layoutInfo struct {
	PageWidth   int      `json:"pageWidth"`
	ViewWidth   int      `json:"viewWidth"`
	FirstH2     string   `json:"firstH2"`
	Recommend   string   `json:"recommend"`
	HeatLinks   []string `json:"heatLinks"`
	Folded      int      `json:"folded"`
	OpenFolded  int      `json:"openFolded"`
	LatFolds    int      `json:"latFolds"`
	CutTables   []string `json:"cutTables"`
	CutElements []string `json:"cutElements"`
	Scrolling   []string `json:"scrolling"`
}

// inspectLayout measures what a reader at 1280 px sees: whether anything
// reaches past the page's right edge, and whether each table fits its box or
// scrolls inside it.
const inspectLayout = `(function () {
  const vw = document.documentElement.clientWidth;
  const cutTables = [], cutElements = [];
  document.querySelectorAll("table").forEach(function (t) {
    const r = t.getBoundingClientRect();
    const wrap = t.closest(".table-wrap");
    if (wrap) {
      const wr = wrap.getBoundingClientRect();
      const scrolls = getComputedStyle(wrap).overflowX === "auto" || getComputedStyle(wrap).overflowX === "scroll";
      if (wr.right > vw + 1 || (r.width > wr.width + 1 && !scrolls)) cutTables.push(t.className + " " + Math.round(r.width) + ">" + Math.round(wr.width));
    } else if (r.right > vw + 1) {
      cutTables.push(t.className + " right " + Math.round(r.right));
    }
  });
  document.querySelectorAll("body *").forEach(function (el) {
    if (el.closest(".table-wrap") || el.offsetParent === null) return;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1) cutElements.push(el.tagName + "." + el.className + " right " + Math.round(r.right));
  });
  return {
    pageWidth: document.documentElement.scrollWidth, viewWidth: vw,
    firstH2: document.querySelector("h2").textContent,
    recommend: (document.querySelector(".recommend") || {}).textContent || "",
    heatLinks: Array.from(document.querySelectorAll("table.heatmap td.hm a")).map(function (a) { return a.getAttribute("href"); }),
    folded: document.querySelectorAll("details.vsec").length,
    openFolded: document.querySelectorAll("details.vsec[open]").length,
    latFolds: document.querySelectorAll("details.lat:not([open])").length,
    cutTables: cutTables, cutElements: cutElements.slice(0, 10),
    scrolling: Array.from(document.querySelectorAll("table.ledger, table.matrix, table.gates")).filter(function (t) {
      const w = t.closest(".table-wrap"); return w && w.scrollWidth > w.clientWidth + 1;
    }).map(function (t) { return t.className; }),
  };
})()`

// TestCapacityReportInBrowser: at 1280 px the capacity report opens with the
// answer and a heat map whose cells link to their variants; nothing reaches
// past the page's edge; wide tables scroll inside their box; the variant
// sections and latency tables are folded; a heat map link opens its section.
func TestCapacityReportInBrowser(t *testing.T) {
	needBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := capacityResult(t)
	htmlPath := filepath.Join(t.TempDir(), HTMLFile)
	if err := WriteHTMLFile(htmlPath, r, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var problems []string
	tab, closeTab, err := browser.Open(ctx, htmlPath, 1280, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, "console error")
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeTab()

	info, err := chromedp.Run(tab, chromedp.Evaluate[layoutInfo](inspectLayout))
	if err != nil {
		t.Fatal(err)
	}
	if info.PageWidth > info.ViewWidth {
		t.Errorf("page %d px wide in a %d px window: something is cut off", info.PageWidth, info.ViewWidth)
	}
	if len(info.CutTables) > 0 || len(info.CutElements) > 0 {
		t.Errorf("cut at the right edge: tables %q, elements %q", info.CutTables, info.CutElements)
	}
	// The ledger, variant and gate tables of 8 long-named variants fit
	// without scrolling: names and headers wrap.
	if len(info.Scrolling) > 0 {
		t.Errorf("tables wider than the window: %q", info.Scrolling)
	}
	if !strings.HasPrefix(info.FirstH2, "Capacity") {
		t.Errorf("the report opens with %q, want the capacity answer", info.FirstH2)
	}
	if want := "Recommendation: " + r.Capacity.Recommended; !strings.Contains(info.Recommend, want) {
		t.Errorf("recommendation %q, want %q", info.Recommend, want)
	}
	if len(info.HeatLinks) != 8 {
		t.Fatalf("%d heat map links, want 8: %q", len(info.HeatLinks), info.HeatLinks)
	}
	if info.Folded != 8 || info.OpenFolded != 0 || info.LatFolds != 8 {
		t.Errorf("folded sections %d (open %d), folded latency tables %d; want 8, 0, 8", info.Folded, info.OpenFolded, info.LatFolds)
	}
	// Following a heat map link opens the folded section it points at.
	target := info.HeatLinks[5]
	opened, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(function () {
	  document.querySelector('table.heatmap a[href="`+target+`"]').click();
	  return new Promise(function (r) { setTimeout(function () { r(document.getElementById("`+target[1:]+`").open); }, 50); });
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !opened {
		t.Errorf("the heat map link %s did not open its section", target)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

// The README's picture: a screenshot of the answer alone, and of a section
// far down the page.
func TestScreenshotOfCapacity(t *testing.T) {
	needBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	htmlPath := filepath.Join(dir, HTMLFile)
	if err := WriteHTMLFile(htmlPath, capacityResult(t), nil); err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(dir, "capacity.png")
	if err := browser.ScreenshotOf(ctx, htmlPath, pngPath, 1280, "#capacity"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	// The section only: narrower than the window, far shorter than the page.
	if b := img.Bounds(); b.Dx() > 1280 || b.Dx() < 600 || b.Dy() < 200 || b.Dy() > 1500 {
		t.Errorf("screenshot %dx%d, want the capacity section alone", b.Dx(), b.Dy())
	}
	if err := browser.ScreenshotOf(ctx, htmlPath, pngPath, 1280, "#no-such-section"); err == nil || !strings.Contains(err.Error(), "no visible element matches #no-such-section") {
		t.Errorf("screenshot of a missing element: %v", err)
	}
}
