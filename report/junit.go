package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// JUnit XML shapes understood by CI systems (GitLab, Jenkins, GitHub reporters).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string          `xml:"name,attr"`
	Tests     int             `xml:"tests,attr"`
	Failures  int             `xml:"failures,attr"`
	Errors    int             `xml:"errors,attr"`
	Skipped   int             `xml:"skipped,attr"`
	Timestamp string          `xml:"timestamp,attr,omitempty"`
	Hostname  string          `xml:"hostname,attr,omitempty"`
	Props     *junitPropsList `xml:"properties,omitempty"`
	Cases     []junitCase     `xml:"testcase"`
	SystemErr string          `xml:"system-err,omitempty"`
}

type junitPropsList struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes r as JUnit XML: one testsuite per variant, one testcase
// per gate. A failed gate is a <failure> carrying the measured value; a gate
// whose metric was not measured is an <error>; a gate that was not evaluated
// (a --set pinned its matrix key, the variant was aborted) is <skipped/> with
// the reason, never a pass. The SLO verdict is a set of properties (slo,
// slo.checks, slo.reason, slo.recommended), not a testcase: a miss does not
// fail the run. A variant that failed to run is an <error>
// testcase named "run"; one an abort gate ended is a <failure> named "abort".
func WriteJUnit(w io.Writer, r *Result) error {
	doc := junitSuites{Name: "bench " + r.Scenario.Name}
	for _, v := range r.Variants {
		s := junitSuite{Name: r.Scenario.Name + "/" + v.Name, Timestamp: r.StartedAt, Hostname: r.Env.Hostname}
		for _, k := range sortedKeys(v.Params) {
			if s.Props == nil {
				s.Props = &junitPropsList{}
			}
			s.Props.Props = append(s.Props.Props, junitProp{Name: k, Value: fmt.Sprint(v.Params[k])})
		}
		if props := sloProps(r, &v); len(props) > 0 {
			if s.Props == nil {
				s.Props = &junitPropsList{}
			}
			s.Props.Props = append(s.Props.Props, props...)
		}
		class := "bench." + r.Scenario.Name + "." + v.Name
		if v.Error != "" {
			s.Cases = append(s.Cases, junitCase{Name: "run", Classname: class,
				Error: &junitFailure{Message: v.Error, Type: "environment", Text: v.Error}})
			s.Errors++
		}
		if a := v.Aborted; a != nil {
			s.Cases = append(s.Cases, junitCase{Name: "abort", Classname: class,
				Failure: &junitFailure{Message: a.Reason, Type: "abort", Text: a.Reason}})
			s.Failures++
		}
		for _, g := range v.Gates {
			c := junitCase{Name: g.Expr, Classname: class}
			switch {
			case g.Skipped:
				c.Skipped = &junitSkipped{Message: g.Reason}
				s.Skipped++
			case g.Error != "":
				c.Error = &junitFailure{Message: g.Error, Type: "gate", Text: g.Error}
				s.Errors++
			case !g.Passed:
				value := g.Display
				if value == "" {
					value = strconv.FormatFloat(g.Value, 'g', -1, 64)
				}
				msg := fmt.Sprintf("gate %q failed: value %s", g.Expr, value)
				c.Failure = &junitFailure{Message: msg, Type: "gate", Text: msg}
				s.Failures++
			}
			s.Cases = append(s.Cases, c)
		}
		s.Tests = len(s.Cases)
		if len(v.Warnings) > 0 {
			for _, wn := range v.Warnings {
				s.SystemErr += "warning: " + wn + "\n"
			}
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// sloProps are a variant's SLO verdict as suite properties.
func sloProps(r *Result, v *Variant) []junitProp {
	if v.SLO == nil {
		return nil
	}
	word := "meets"
	if !v.SLO.Met {
		word = "misses"
	}
	texts := make([]string, len(v.SLO.Checks))
	for i, c := range v.SLO.Checks {
		texts[i] = c.Text
	}
	out := []junitProp{{Name: "slo", Value: word}, {Name: "slo.checks", Value: strings.Join(texts, "; ")}}
	if v.SLO.Reason != "" {
		out = append(out, junitProp{Name: "slo.reason", Value: v.SLO.Reason})
	}
	if v.SLO.Caveat != "" {
		out = append(out, junitProp{Name: "slo.caveat", Value: v.SLO.Caveat})
	}
	if r.Capacity != nil && r.Capacity.Recommended == v.Name {
		out = append(out, junitProp{Name: "slo.recommended", Value: "true"})
	}
	return out
}
