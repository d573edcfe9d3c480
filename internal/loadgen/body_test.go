package loadgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplateRendersEachJob(t *testing.T) {
	bt, err := ParseTemplate(`{"tid":"{{.TID}}","order":{{.Seq}},"sku":"{{randChoice "a" "b"}}","n":{{randInt 1 3}}}`, 42)
	if err != nil {
		t.Fatal(err)
	}
	skus := map[string]int{}
	for seq := range int64(200) {
		b, err := bt.Render(BodyData{TID: TID("r", seq), Seq: seq})
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			TID   string
			Order int64
			SKU   string
			N     int
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if v.TID != TID("r", seq) || v.Order != seq || v.N < 1 || v.N > 3 {
			t.Fatalf("body %s", b)
		}
		skus[v.SKU]++
	}
	if len(skus) != 2 || skus["a"] == 0 || skus["b"] == 0 {
		t.Errorf("randChoice drew %v", skus)
	}
}

func TestTemplateErrorsBeforeTheLoad(t *testing.T) {
	for _, text := range []string{`{{.Nope}}`, `{{randChoice}}`, `{{randInt 3 1}}`, `{{`} {
		if _, err := ParseTemplate(text, 1); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", text)
		}
	}
}

func TestSetJSONField(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a":1,"tid":"old","b":[1,2]}`, `{"a":1,"tid":"T","b":[1,2]}`},
		{`{"a":{"tid":"nested"}}`, `{"a":{"tid":"nested"},"tid":"T"}`},
		{`{}`, `{"tid":"T"}`},
		{` { "x" : "y" } `, `{"x":"y","tid":"T"}`},
	}
	for _, c := range cases {
		got, err := SetJSONField([]byte(c.in), "tid", "T")
		if err != nil || string(got) != c.want {
			t.Errorf("SetJSONField(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
		if tid, ok := JSONField(got, "tid"); !ok || tid != "T" {
			t.Errorf("JSONField(%s) = %q, %v", got, tid, ok)
		}
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":1}{"b":2}`, `{"a":`, ``} {
		if got, err := SetJSONField([]byte(bad), "tid", "T"); err == nil {
			t.Errorf("SetJSONField(%q) = %s, want an error", bad, got)
		}
	}
	if _, ok := JSONField([]byte(`{"tid":5}`), "tid"); ok {
		t.Error("JSONField reads a number as a TID")
	}
}

func TestReadBodyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n\n  {\"a\":2}  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bodies, err := ReadBodyFile(path, "tid")
	if err != nil || len(bodies) != 2 || string(bodies[1]) != `{"a":2}` {
		t.Fatalf("bodies %q, %v", bodies, err)
	}
	if err := os.WriteFile(path, []byte("\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBodyFile(path, ""); err == nil || !strings.Contains(err.Error(), "holds no body") {
		t.Errorf("empty file: %v", err)
	}
}
