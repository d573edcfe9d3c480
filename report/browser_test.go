package report

import (
	"context"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/benchmq/bench/report/browser"
)

// needBrowser fails the test when no Chromium is installed: the report's
// charts are only tested in a browser. BENCH_SKIP_BROWSER=1 skips instead.
func needBrowser(t *testing.T) {
	t.Helper()
	if os.Getenv("BENCH_SKIP_BROWSER") == "1" {
		t.Skip("BENCH_SKIP_BROWSER=1")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if _, err := exec.LookPath(name); err == nil {
			return
		}
	}
	t.Fatal("no chromium on PATH (apt-get install -y chromium), or set BENCH_SKIP_BROWSER=1")
}

type chartInfo struct {
	Title       string  `json:"title"`
	Width       int     `json:"w"`
	Height      int     `json:"h"`
	Faults      int     `json:"faults"`
	LegendItems int     `json:"legend"`
	Tinted      int     `json:"tinted"`
	Outside     int     `json:"outside"`
	BandX       float64 `json:"bandX"`
}

// inspectCharts measures every chart: its canvas size, its fault legend and,
// for the first fault band, how many sampled pixels down the middle of the
// band are tinted red, against the same samples just left of the band.
const inspectCharts = `window.benchCharts.map(function (c) {
  const cv = c.el.querySelector("canvas");
  const box = c.el.parentElement;
  const legend = box.querySelectorAll(".fault-legend .fault").length;
  let tinted = 0, outside = 0, bandX = -1;
  if (c.faults.length) {
    const u = c.u, f = c.faults[0], b = u.bbox;
    bandX = (u.valToPos(f.at, "x", true) + u.valToPos(f.until, "x", true)) / 2;
    const outX = u.valToPos(f.at, "x", true) - 6;
    // The canvas is transparent: composite each pixel over the white page.
    const red = function (x, y) {
      const d = u.ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data, a = d[3] / 255;
      const r = d[0] * a + 255 * (1 - a), g = d[1] * a + 255 * (1 - a), bl = d[2] * a + 255 * (1 - a);
      return r > 200 && r - bl > 15 && r - g > 10;
    };
    for (let i = 1; i < 20; i++) {
      const y = b.top + b.height * i / 20;
      if (red(bandX, y)) tinted++;
      if (red(outX, y)) outside++;
    }
  }
  return { title: c.title, w: cv ? cv.width : 0, h: cv ? cv.height : 0, faults: c.faults.length, legend: legend, tinted: tinted, outside: outside, bandX: bandX };
})`

// TestReportInBrowser opens one report in Chromium and checks everything on
// it in one session (charts, fault bands, escaping, console errors); it is
// long because a browser start per check would cost seconds each.
func TestReportInBrowser(t *testing.T) {
	needBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	dir := t.TempDir()
	r := syntheticResult(t)
	r.Scenario.Description = `<script>alert(1)</script> spike`
	base := cloneForTest(t, r)
	// A third variant that failed early: no histograms, a partial series, no faults.
	r.Variants = append(r.Variants, Variant{
		Name: "prefetch=0", Params: map[string]any{"workers.prefetch": 0}, Error: "worker process exited: signal: killed",
		Series: map[string][]float64{"t_s": {0, 1, 2}, "queue_ready": {10, math.NaN(), 30}, "publish_rate": {1}},
	})
	htmlPath := filepath.Join(dir, HTMLFile)
	if err := WriteHTMLFile(htmlPath, r, base); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var problems []string
	record := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			problems = append(problems, "exception: "+msg)
		}
	}
	tab, closeTab, err := browser.Open(ctx, htmlPath, 1280, record)
	if err != nil {
		t.Fatal(err)
	}
	defer closeTab()

	charts, err := chromedp.Run(tab, chromedp.Evaluate[[]chartInfo](inspectCharts))
	if err != nil {
		t.Fatal(err)
	}
	// 3 spectra + 6 series groups for each of the 2 complete variants + the
	// queue depth of the broken one (its publish_rate is too short to draw).
	if len(charts) != 3+2*6+1 {
		t.Errorf("%d charts, want 16", len(charts))
	}
	withFaults := 0
	for _, c := range charts {
		if c.Width <= 0 || c.Height <= 0 {
			t.Errorf("chart %q: canvas %dx%d", c.Title, c.Width, c.Height)
		}
		if c.Faults == 0 {
			continue
		}
		withFaults++
		if c.LegendItems != c.Faults {
			t.Errorf("chart %q: %d faults, %d in the legend", c.Title, c.Faults, c.LegendItems)
		}
		if c.Tinted < 10 || c.Tinted <= c.Outside {
			t.Errorf("chart %q: %d of 19 pixels in the fault band are shaded (%d outside it)", c.Title, c.Tinted, c.Outside)
		}
	}
	if withFaults != 12 {
		t.Errorf("%d charts show faults, want 12", withFaults)
	}
	alerts, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("script").length`))
	if err != nil {
		t.Fatal(err)
	}
	if alerts != 3 {
		t.Errorf("%d script elements, want 3 (run data injected a script?)", alerts)
	}
	desc, err := chromedp.Run(tab, chromedp.Text(".desc"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(desc, "<script>alert(1)</script>") {
		t.Errorf("description shown as %q, want the literal text", desc)
	}

	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(t.TempDir(), "report.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shotPath)
	// BENCH_REPORT_KEEP=DIR keeps the report and its screenshot for a look by eye.
	if keep := os.Getenv("BENCH_REPORT_KEEP"); keep != "" {
		html, err := os.ReadFile(htmlPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, "report.html"), html, 0o644)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, "report.png"), shot, 0o644)
		}
		if err != nil {
			t.Errorf("keep report: %v", err)
		}
	}

	mu.Lock()
	for _, p := range problems {
		t.Errorf("browser console: %s", p)
	}
	mu.Unlock()

	// The listener must be able to see an error at all: the browser reports a
	// console call before it answers the evaluation that made it.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[chromedp.Void](`console.error("probe")`)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) == 0 || !strings.Contains(problems[len(problems)-1], "probe") {
		t.Errorf("console listener did not see a console.error: %q", problems)
	}
}

func TestScreenshot(t *testing.T) {
	needBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	htmlPath := filepath.Join(dir, HTMLFile)
	r := syntheticResult(t)
	r.Variants = r.Variants[:1]
	if err := WriteHTMLFile(htmlPath, r, nil); err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(dir, "shot.png")
	if err := browser.Screenshot(ctx, htmlPath, pngPath, 1000); err != nil {
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
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() < 1000 {
		t.Errorf("screenshot %dx%d, want 1000 wide and the full page tall", b.Dx(), b.Dy())
	}
}
