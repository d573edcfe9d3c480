package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/browser"
)

var reportCLI = cli{
	name:  "report",
	usage: "result.json [-o report.html] [--baseline base.json] [--screenshot report.png]",
	about: `Re-renders the HTML report of a result, e.g. after upgrading bench, or against another
baseline. The report is one self-contained file (charts included) that opens offline.`,
	examples: []string{
		"bench report out/spike-20250102T030405Z/result.json",
		"bench report new/result.json --baseline scenarios/baselines/spike.json -o compare.html",
		"# a PNG as well (needs chromium):",
		"bench report result.json --screenshot report.png --width 1280",
		"# only the answer to the scenario's slo:",
		"bench report result.json --screenshot capacity.png --screenshot-of '#capacity'",
	},
	exits: "0 written\n2 bad input: flags, an unreadable result\n3 the screenshot failed (no chromium)",
}

func cmdReport(args []string, s stdio) int { return runReport(args, s.out, s.err) }

func runReport(args []string, stdout, stderr io.Writer) int {
	s := stdio{out: stdout, err: stderr}
	fs := reportCLI.flags()
	out := fs.StringP("output", "o", "", "HTML file to write (default report.html next to result.json)")
	baseline := fs.String("baseline", "", "overlay and compare with this result.json")
	screenshot := fs.String("screenshot", "", "also write a PNG screenshot of the report (needs chromium)")
	width := fs.Int("width", 1280, "screenshot width in pixels")
	of := fs.String("screenshot-of", "", "screenshot only the element this CSS selector matches, e.g. '#capacity' (the answer to the SLO)")
	if code, done := reportCLI.parse(fs, args, s); done {
		return code
	}
	if !reportCLI.args(fs, 1, 1, s) {
		return exitInput
	}
	if *width < 320 {
		return reportCLI.fail(s, "--width %d: must be at least 320", *width)
	}
	src := fs.Arg(0)
	r, err := report.ReadFile(src)
	if err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return exitInput
	}
	var base *report.Result
	if *baseline != "" {
		if base, err = report.ReadFile(*baseline); err != nil {
			fmt.Fprintln(stderr, "bench report:", err)
			return exitInput
		}
	}
	dst := *out
	if dst == "" {
		dst = filepath.Join(filepath.Dir(src), report.HTMLFile)
	}
	if err := report.WriteHTMLFile(dst, r, base); err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return exitInput
	}
	fmt.Fprintln(stdout, "report:", dst)
	if *screenshot == "" {
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := browser.ScreenshotOf(ctx, dst, *screenshot, *width, *of); err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return exitEnv
	}
	fmt.Fprintln(stdout, "screenshot:", *screenshot)
	return exitOK
}
