package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File names WriteAll writes into its directory.
const (
	ResultFile = "result.json"
	JUnitFile  = "junit.xml"
	HTMLFile   = "report.html"
)

// HgrmFile is the name of the .hgrm file of one variant's latency kind.
func HgrmFile(variant, kind string) string {
	return safeName(variant) + "." + kind + ".hgrm"
}

// WriteAll writes result.json, one .hgrm per variant and latency kind,
// junit.xml and report.html into dir, which must exist. baseline may be nil.
// It writes every file it can and returns all the errors.
func WriteAll(dir string, r *Result, baseline *Result) error {
	if r == nil {
		return fmt.Errorf("write results: nil result")
	}
	var errs []error
	if err := WriteFile(filepath.Join(dir, ResultFile), r); err != nil {
		errs = append(errs, err)
	}
	for _, v := range r.Variants {
		for _, kind := range sortedKeys(v.Histograms) {
			h, err := DecodeHistogram(v.Histograms[kind])
			if err != nil {
				errs = append(errs, fmt.Errorf("variant %s %s: %w", v.Name, kind, err))
				continue
			}
			var b bytes.Buffer
			if err := WriteHgrm(&b, h); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := writeFileAtomic(filepath.Join(dir, HgrmFile(v.Name, kind)), b.Bytes()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := writeWith(filepath.Join(dir, JUnitFile), func(w io.Writer) error { return WriteJUnit(w, r) }); err != nil {
		errs = append(errs, err)
	}
	if err := writeWith(filepath.Join(dir, HTMLFile), func(w io.Writer) error { return RenderHTML(w, r, baseline) }); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WriteHTMLFile renders the report of r (and baseline, which may be nil) to path.
func WriteHTMLFile(path string, r *Result, baseline *Result) error {
	return writeWith(path, func(w io.Writer) error { return RenderHTML(w, r, baseline) })
}

func writeWith(path string, fn func(io.Writer) error) error {
	var b bytes.Buffer
	if err := fn(&b); err != nil {
		return err
	}
	return writeFileAtomic(path, b.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// safeName keeps a variant name usable as a file name on every OS.
func safeName(s string) string {
	if s == "" {
		return "variant"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '=':
			return r
		}
		return '_'
	}, s)
}
