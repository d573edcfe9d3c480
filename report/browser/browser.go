// Package browser opens bench's HTML reports in a private headless Chromium:
// screenshots for the README, and the tab the report's browser tests inspect.
// It is its own package so that nothing else pulls in chromedp.
package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Screenshot renders the report at htmlPath in headless Chromium with a
// viewport width pixels wide and writes a full-page PNG to pngPath. It needs
// a chromium (or chrome) binary on PATH.
func Screenshot(ctx context.Context, htmlPath, pngPath string, width int) error {
	return ScreenshotOf(ctx, htmlPath, pngPath, width, "")
}

// ScreenshotOf is Screenshot of the first element matching the CSS
// selector (e.g. "#capacity", the report's answer to its SLO); the full page
// when selector is "".
func ScreenshotOf(ctx context.Context, htmlPath, pngPath string, width int, selector string) error {
	if width <= 0 {
		return fmt.Errorf("screenshot %s: width %d: must be positive", htmlPath, width)
	}
	tab, closeTab, err := Open(ctx, htmlPath, width)
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", htmlPath, err)
	}
	defer closeTab()
	var png []byte
	if selector == "" {
		png, err = chromedp.Run(tab, chromedp.FullScreenshot(100))
	} else {
		png, err = captureElement(tab, selector)
	}
	if err != nil {
		return fmt.Errorf("screenshot %s: capture: %w", htmlPath, err)
	}
	if err := os.WriteFile(pngPath, png, 0o644); err != nil {
		return fmt.Errorf("screenshot %s: %w", htmlPath, err)
	}
	return nil
}

// Open starts a private headless browser, opens htmlPath and waits
// until the report's script has drawn its charts. listen, when not nil, sees
// every event of the tab from before the page loads. closeTab stops the
// browser and removes its profile.
func Open(ctx context.Context, htmlPath string, width int, listen ...func(ev any)) (tab context.Context, closeTab func(), err error) {
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve path: %w", err)
	}
	profile, err := os.MkdirTemp("", "bench-chromium-")
	if err != nil {
		return nil, nil, fmt.Errorf("create browser profile: %w", err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, 900),
	)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	closeTab = func() {
		cancelTab()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	}
	for _, fn := range listen {
		if err := chromedp.Listen(tab, fn); err != nil {
			closeTab()
			return nil, nil, fmt.Errorf("start browser: %w", err)
		}
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if err := chromedp.Do(tab,
		chromedp.EmulateViewport(int64(width), 900),
		chromedp.Navigate(u.String()),
	); err != nil {
		closeTab()
		return nil, nil, fmt.Errorf("open report: %w", err)
	}
	// The script is inline and synchronous, so after the load event the charts
	// exist; wait for one animation frame so that every canvas is painted.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](
		`new Promise(r => requestAnimationFrame(() => r(Array.isArray(window.benchCharts))))`,
		chromedp.EvalAwaitPromise)); err != nil {
		closeTab()
		return nil, nil, fmt.Errorf("wait for charts: %w", err)
	}
	return tab, closeTab, nil
}

// captureElement captures the page region of the first element matching
// selector, wherever it is on the page (the screenshot reaches beyond the
// viewport rather than scrolling to it).
func captureElement(tab context.Context, selector string) ([]byte, error) {
	type box struct {
		X, Y, W, H float64
	}
	b, err := chromedp.Run(tab, chromedp.Evaluate[box](`(function () {
  const e = document.querySelector(`+strconv.Quote(selector)+`);
  if (!e) return {X: 0, Y: 0, W: 0, H: 0};
  const r = e.getBoundingClientRect();
  return {X: r.left + window.scrollX, Y: r.top + window.scrollY, W: r.width, H: r.height};
})()`))
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", selector, err)
	}
	if b.W <= 0 || b.H <= 0 {
		return nil, fmt.Errorf("no visible element matches %s", selector)
	}
	beyond, surface := true, true
	return chromedp.Run(tab, chromedp.Action[[]byte](func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: &beyond, FromSurface: &surface,
			Clip: &page.Viewport{X: b.X, Y: b.Y, Width: b.W, Height: b.H, Scale: 1}})
		return r.Data, err
	}))
}
