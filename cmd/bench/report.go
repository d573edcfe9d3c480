package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/browser"
)

func cmdReport(args []string) int { return runReport(args, os.Stdout, os.Stderr) }

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench report", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.StringP("output", "o", "", "HTML file to write (default report.html next to result.json)")
	baseline := fs.String("baseline", "", "overlay and compare with this result.json")
	screenshot := fs.String("screenshot", "", "also write a PNG screenshot of the report (needs chromium)")
	width := fs.Int("width", 1280, "screenshot width in pixels")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench report result.json [-o report.html] [--baseline base.json] [--screenshot report.png]")
		fmt.Fprintln(stderr, "Re-renders the HTML report of a result.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitInput
	}
	if *width < 320 {
		fmt.Fprintf(stderr, "bench report: --width %d: must be at least 320\n", *width)
		return exitInput
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
	if err := browser.Screenshot(ctx, dst, *screenshot, *width); err != nil {
		fmt.Fprintln(stderr, "bench report:", err)
		return exitEnv
	}
	fmt.Fprintln(stdout, "screenshot:", *screenshot)
	return exitOK
}
