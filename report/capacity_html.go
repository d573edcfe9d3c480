package report

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// capacityView is the report's opening answer to the SLO: the
// recommendation, the cells that meet it by cost, why the others miss, and a
// heat map of the matrix.
type capacityView struct {
	C        *Capacity
	SLO      string
	Meeting  []costRow
	Misses   []missRow
	HeatMaps []heatMap
}

type costRow struct {
	Rank    int
	Variant string
	Anchor  string
	Cost    string
	Caveat  string
}

type missRow struct {
	Variant, Anchor, Reason, Caveat string
}

// heatMap is the matrix (1–3 keys) as a grid: rows are the values of one
// key, columns of another; a third key makes one grid per value.
type heatMap struct {
	Title   string // "workers.processes = 2" for a third key; "" otherwise
	RowKey  string
	ColKey  string
	ColVals []string
	Rows    []heatRow
}

type heatRow struct {
	Label string
	Cells []heatCell
}

type heatCell struct {
	Anchor string // "#v-3"; "" when no variant has these values
	Class  string // meets, caveat, misses or none
	Text   string // p99 end-to-end
	Title  string // the verdict in words
	Star   bool   // the recommendation
}

// variantAnchor is the id of a variant's section in the report.
func variantAnchor(i int) string { return "v-" + strconv.Itoa(i) }

func buildCapacity(r *Result) *capacityView {
	// Planned again from the verdicts, so that a result an older bench wrote
	// reads as this one would answer it.
	c := PlanCapacity(r)
	if c == nil {
		return nil
	}
	index := map[string]int{}
	for i, v := range r.Variants {
		index[v.Name] = i
	}
	cv := &capacityView{C: c, SLO: c.SLO.Describe()}
	for i, m := range c.Meeting {
		cv.Meeting = append(cv.Meeting, costRow{Rank: i + 1, Variant: m.Variant, Anchor: "#" + variantAnchor(index[m.Variant]),
			Cost: DescribeCost(m, c.SLO.Rate), Caveat: m.Caveat})
	}
	for _, m := range c.Missing {
		cv.Misses = append(cv.Misses, missRow{Variant: m.Variant, Anchor: "#" + variantAnchor(index[m.Variant]), Reason: m.Reason, Caveat: m.Caveat})
	}
	cv.HeatMaps = heatMaps(r, c.Recommended)
	return cv
}

// heatMaps lays the variants out by their matrix values, for 1–3 matrix keys.
func heatMaps(r *Result, rec string) []heatMap {
	keys, vals := matrixValues(r.Variants)
	if len(keys) == 0 || len(keys) > 3 {
		return nil
	}
	find := func(want map[string]string) int {
		for i, v := range r.Variants {
			match := true
			for k, x := range want {
				if fmt.Sprint(v.Params[k]) != x {
					match = false
					break
				}
			}
			if match {
				return i
			}
		}
		return -1
	}
	grid := func(title string, fixed map[string]string, rowKey, colKey string) heatMap {
		h := heatMap{Title: title, RowKey: rowKey, ColKey: colKey, ColVals: vals[colKey]}
		rowVals := []string{""}
		if rowKey != "" {
			rowVals = vals[rowKey]
		}
		for _, rv := range rowVals {
			row := heatRow{Label: rv}
			for _, cval := range vals[colKey] {
				want := map[string]string{colKey: cval}
				for k, x := range fixed {
					want[k] = x
				}
				if rowKey != "" {
					want[rowKey] = rv
				}
				row.Cells = append(row.Cells, heatCellOf(r, find(want), rec))
			}
			h.Rows = append(h.Rows, row)
		}
		return h
	}
	switch len(keys) {
	case 1:
		return []heatMap{grid("", nil, "", keys[0])}
	case 2:
		return []heatMap{grid("", nil, keys[0], keys[1])}
	}
	var out []heatMap
	for _, x := range vals[keys[0]] {
		out = append(out, grid(keys[0]+" = "+x, map[string]string{keys[0]: x}, keys[1], keys[2]))
	}
	return out
}

func heatCellOf(r *Result, i int, rec string) heatCell {
	if i < 0 {
		return heatCell{Class: "none", Text: "—"}
	}
	v := &r.Variants[i]
	c := heatCell{Anchor: "#" + variantAnchor(i), Class: "none", Title: v.Name, Star: v.Name == rec}
	if v.LatencyMS.EndToEnd.Count > 0 {
		c.Text = "p99 " + FormatMetric("p99(end_to_end)", v.LatencyMS.EndToEnd.P99/1e3)
	} else {
		c.Text = "no samples"
	}
	switch s := v.SLO; {
	case s == nil:
	case s.Met && s.Caveat != "":
		c.Class, c.Title = "caveat", v.Name+": meets the SLO, but "+s.Caveat
	case s.Met:
		c.Class, c.Title = "meets", v.Name+": meets the SLO"
	default:
		c.Class, c.Title = "misses", v.Name+": misses: "+s.Reason
	}
	return c
}

// matrixValues returns the matrix keys, in the file's order when the
// variant names give it ("k=v,k=v"), sorted otherwise, and each key's values
// in the order the variants first take them (the file's order).
func matrixValues(vs []Variant) ([]string, map[string][]string) {
	vals := map[string][]string{}
	for _, v := range vs {
		for k, x := range v.Params {
			s := fmt.Sprint(x)
			if !slices.Contains(vals[k], s) {
				vals[k] = append(vals[k], s)
			}
		}
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(vs) > 0 {
		var named []string
		for _, part := range strings.Split(vs[0].Name, ",") {
			// A name may shorten a key to its last segment: processes=2.
			seg, _, _ := strings.Cut(part, "=")
			for _, k := range keys {
				if (k == seg || strings.HasSuffix(k, "."+seg)) && !slices.Contains(named, k) {
					named = append(named, k)
					break
				}
			}
		}
		if len(named) == len(keys) {
			keys = named
		}
	}
	return keys, vals
}
