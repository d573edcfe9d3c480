package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var sizeUnits = []struct {
	name string
	mult float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// parseSize parses "512B", "4KiB", "1.5MiB", "2MB" or a bare number of bytes.
// Fractions are allowed when the result is a whole number of bytes.
func parseSize(s string) (int64, error) {
	num, mult := s, 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.name) {
			num, mult = strings.TrimSuffix(s, u.name), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eEnNiI_xX") {
		return 0, fmt.Errorf("bad size %q: want bytes or a number with B, KiB, MiB, GiB, KB, MB or GB", s)
	}
	b := v * mult
	if b < 0 {
		return 0, fmt.Errorf("bad size %q: must not be negative", s)
	}
	if b > 1<<50 {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	if b != math.Trunc(b) {
		return 0, fmt.Errorf("bad size %q: not a whole number of bytes", s)
	}
	return int64(b), nil
}

// parseRate parses "200/s", "12000/m", "5/ms", "3600/h" or a bare number of
// jobs per second, returning jobs per second.
func parseRate(s string) (float64, error) {
	num, per := s, time.Second
	if n, unit, ok := strings.Cut(s, "/"); ok {
		num = n
		switch strings.TrimSpace(unit) {
		case "s":
		case "ms":
			per = time.Millisecond
		case "m", "min":
			per = time.Minute
		case "h":
			per = time.Hour
		default:
			return 0, fmt.Errorf("bad rate %q: unit after / must be ms, s, m or h", s)
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || strings.ContainsAny(num, "nNiI_xX") {
		return 0, fmt.Errorf("bad rate %q: want a number of jobs per second or e.g. 200/s, 12000/m", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("bad rate %q: must not be negative", s)
	}
	r := v / per.Seconds()
	if math.IsInf(r, 0) || r > 1e9 {
		return 0, fmt.Errorf("bad rate %q: too large", s)
	}
	return r, nil
}

// parseDuration parses a Go duration ("250ms", "2s", "1m30s"); "0" alone may omit the unit.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("bad duration %q: needs a unit, e.g. %sms or %ss", s, s, s)
		}
		return 0, fmt.Errorf("bad duration %q: want e.g. 250ms, 2s or 1m30s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	}
	return d, nil
}

// parseFraction parses "15%" or a fraction in [0, 1] such as 0.15.
func parseFraction(s string) (float64, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || strings.ContainsAny(p, "nNiI_xX") || v < 0 || v > 1e6 {
			return 0, fmt.Errorf("bad percentage %q", s)
		}
		return v / 100, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "nNiI_xX") {
		return 0, fmt.Errorf("bad fraction %q: want e.g. 15%% or 0.15", s)
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("bad fraction %q: must be in [0, 1]; write 15%% for a percentage", s)
	}
	return v, nil
}
