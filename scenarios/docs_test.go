package scenarios

import (
	"encoding/json"

	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// TestShippedScenariosParse keeps every scenario file shipped with bench valid.
func TestShippedScenariosParse(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	examples, _ := filepath.Glob("examples/*.yaml")
	files = append(files, examples...)
	if err != nil || len(files) == 0 || len(examples) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		if _, err := Load(f, nil); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// faultLine is a one-line fault in the docs: "- {at: ..., target: ...}".
var faultLine = regexp.MustCompile(`^\s*-\s*(\{.*\btarget:.*\})\s*(#.*)?$`)

// TestDocsFaultExamples parses every fault the documentation shows, so that
// what docs/faults.md and docs/scenarios.md teach is what bench accepts.
func TestDocsFaultExamples(t *testing.T) {
	var n int
	for _, doc := range []string{"../docs/faults.md", "../docs/scenarios.md", "../README.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			m := faultLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			// A 3-node cluster takes every fault a single node takes, and the cluster's.
			sc := "name: t\ntask: bench.job.process\nbroker: {managed: true, nodes: 3}\njob: {dependency_calls: 1}\n" +
				"load:\n  - steady: {rate: 10/s, for: 120s}\nfaults:\n  - " + m[1] + "\n"
			if strings.Contains(m[1], "name:") {
				// A named dependency is one of an own worker's.
				sc = "name: t\ntask: bench.job.process\nbroker: {managed: true}\nworkers: {command: [w]}\n" +
					"dependencies: [{name: payments, upstream: '127.0.0.1:8081', env: PAYMENTS_ADDR}]\n" +
					"load:\n  - steady: {rate: 10/s, for: 120s}\nfaults:\n  - " + m[1] + "\n"
			}
			if _, err := Parse(doc, []byte(sc), nil); err != nil {
				t.Errorf("%s:%d: %s\n%v", doc, i+1, strings.TrimSpace(line), err)
			}
		}
	}
	if n < 15 {
		t.Errorf("found %d fault examples in the docs; the pattern no longer matches them", n)
	}
}

// TestDocsMentionEveryKey: every key of the table is documented.
func TestDocsMentionEveryKey(t *testing.T) {
	data, err := os.ReadFile("../docs/scenarios.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range scenarioFields {
		for _, p := range f.paths("") {
			if !bytes.Contains(data, []byte("`"+p+"`")) {
				t.Errorf("docs/scenarios.md does not mention `%s`", p)
			}
		}
	}
	for kind, fields := range phaseFields {
		for _, f := range fields {
			if !bytes.Contains(data, []byte("`"+f.key().Name+"`")) {
				t.Errorf("docs/scenarios.md does not mention `%s` of %s phases", f.key().Name, kind)
			}
		}
	}
}

// TestSchemaFile keeps docs/scenario.schema.json what `bench schema` prints.
func TestSchemaFile(t *testing.T) {
	path := filepath.Join("..", "docs", "scenario.schema.json")
	got := JSONSchema()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: go test ./scenarios -run TestSchemaFile -update", path)
	}
	for _, f := range scenarioFields {
		if !bytes.Contains(got, []byte(`"`+f.key().Name+`"`)) {
			t.Errorf("schema lacks %s", f.key().Name)
		}
	}
}

// TestSchemaAcceptsShippedScenarios checks the schema against real files: every
// shipped scenario, read as JSON, validates; a misspelt key does not.
func TestSchemaAcceptsShippedScenarios(t *testing.T) {
	c := jsonschema.NewCompiler()
	var doc any
	if err := json.Unmarshal(JSONSchema(), &doc); err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	files, _ := filepath.Glob("*.yaml")
	examples, _ := filepath.Glob("examples/*.yaml")
	files = append(append(files, examples...), filepath.Join("testdata", "full.yaml"))
	for _, f := range files {
		var v any
		if err := yaml.Unmarshal(mustRead(t, f), &v); err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(jsonValue(v)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	var bad any
	_ = yaml.Unmarshal([]byte("name: t\ntask: a.b.c\nload: [{spike: {jobs: 1}}]\nworkers: {prefech: 3}\n"), &bad)
	if err := sch.Validate(jsonValue(bad)); err == nil {
		t.Error("schema accepts workers.prefech")
	}
}

// jsonValue turns a decoded YAML value into what encoding/json would decode.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
