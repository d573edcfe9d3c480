package report

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// A count a mode cannot see (a black box's retries and redeliveries) is
// null in result.json and reads back as unobserved; gates cannot judge it,
// the report shows n/a; an observed count keeps its number.
func TestUnobservedCountsAreNullNeverZero(t *testing.T) {
	l := Ledger{Published: 10, Confirmed: 10, Succeeded: 10, Retries: 0, Redelivered: 0, Unobserved: []string{"redelivered", "retries"}}
	js, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"retries":null`, `"redelivered":null`, `"published":10`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("%s lacks %s", js, want)
		}
	}
	var back Ledger
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Observed("retries") || back.Observed("redelivered") || back.Published != 10 {
		t.Errorf("read back %+v", back)
	}
	// An older result, or a white-box one: numbers, observed.
	var old Ledger
	if err := json.Unmarshal([]byte(`{"published":3,"retries":7,"redelivered":2}`), &old); err != nil {
		t.Fatal(err)
	}
	if !old.Observed("retries") || old.Retries != 7 || old.Redelivered != 2 || old.Unobserved != nil {
		t.Errorf("read %+v", old)
	}
	js, _ = json.Marshal(old)
	if !bytes.Contains(js, []byte(`"retries":7`)) || bytes.Contains(js, []byte("unobserved")) {
		t.Errorf("observed ledger written as %s", js)
	}

	v := Variant{Ledger: l}
	if _, ok := Lookup(&v)("retries"); ok {
		t.Error("a gate reads unobserved retries as a value")
	}
	if n, ok := Lookup(&v)("succeeded"); !ok || n != 10 {
		t.Errorf("succeeded = %v, %v", n, ok)
	}

	r := syntheticResult(t)
	r.Variants[0].Ledger.Unobserved = []string{"redelivered", "retries"}
	var b bytes.Buffer
	if err := RenderHTML(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`<tr><td>` + regexp.QuoteMeta(r.Variants[0].Name) + `</td>(<td>[^<]*</td>)+</tr>`).FindString(b.String())
	if strings.Count(row, "<td>n/a</td>") != 2 {
		t.Errorf("ledger row %q: want n/a for retries and redelivered", row)
	}
}
