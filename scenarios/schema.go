package scenarios

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/benchmq/bench/chaos/fault"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/report"
)

// SchemaID names the JSON Schema of scenario files (docs/scenario.schema.json).
const SchemaID = "https://github.com/benchmq/bench/docs/scenario.schema.json"

// JSONSchema returns the JSON Schema (draft-07, which editors' YAML support
// reads) of a scenario file, built from the same key table the parser
// uses. It checks shapes, names and ranges; rules between keys are the
// parser's alone (`bench validate`).
func JSONSchema() []byte {
	def := &Scenario{}
	def.setDefaults()
	js := objectSchema(scenarioFields, def)
	js["$schema"] = "http://json-schema.org/draft-07/schema#"
	js["$id"] = SchemaID
	js["title"] = "bench scenario"
	out, err := json.MarshalIndent(js, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode scenario schema: %v", err)) // the schema is static data
	}
	return append(out, '\n')
}

// objectSchema describes a mapping of fields; def holds their defaults.
func objectSchema[U any](fields []field[U], def *U) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fields {
		m := f.key()
		js := f.schema(def)
		js["description"] = m.Doc
		props[m.Name] = js
		if m.Required {
			required = append(required, m.Name)
		}
	}
	js := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		js["required"] = required
	}
	return js
}

// defaultValue renders a default as it would be written in a scenario file.
func defaultValue(v any) any {
	switch v := v.(type) {
	case time.Duration:
		return v.String()
	case float64, bool, string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// Value syntaxes (docs/scenarios.md, "Value syntax").
var (
	durationSchema = map[string]any{"type": []string{"string", "integer"}, "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`}
	sizeSchema     = map[string]any{"type": []string{"string", "integer"}, "pattern": `^[0-9]+(\.[0-9]+)?\s*(B|KiB|MiB|GiB|KB|MB|GB)?$`}
	rateSchema     = map[string]any{"type": []string{"string", "number"}, "pattern": `^[0-9]+(\.[0-9]+)?(\s*/\s*(ms|s|m|min|h))?$`}
	fractionSchema = map[string]any{"type": []string{"string", "number"}, "pattern": `^[0-9]+(\.[0-9]+)?%?$`}
)

func distSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		durationSchema,
		map[string]any{"type": "object", "additionalProperties": false, "required": []string{"dist"},
			"properties": map[string]any{
				"dist":  map[string]any{"enum": []string{DistFixed, DistExponential, DistLognormal}},
				"value": durationSchema, "mean": durationSchema, "p50": durationSchema, "p99": durationSchema,
			}},
	}}
}

func loadSchema() map[string]any {
	var kinds []any
	for _, kind := range phaseKinds {
		kinds = append(kinds, map[string]any{"type": "object", "additionalProperties": false,
			"required": []string{kind}, "properties": map[string]any{kind: objectSchema(phaseFields[kind], &defaultPhase)}})
	}
	return map[string]any{"type": "array", "minItems": 1, "maxItems": maxPhases, "items": map[string]any{"oneOf": kinds}}
}

func faultsSchema() map[string]any {
	props := map[string]any{
		"at":       map[string]any{"description": "when, after the load starts", "anyOf": []any{durationSchema}},
		"for":      map[string]any{"description": "how long", "anyOf": []any{durationSchema}},
		"target":   map[string]any{"enum": fault.TargetNames()},
		"name":     map[string]any{"type": "string", "description": "target dependency: one of dependencies (workers.command); absent: the simulated dependency"},
		"toxic":    map[string]any{"enum": fault.ToxicNames()},
		"down":     map[string]any{"type": "boolean"},
		"action":   map[string]any{"enum": actionNames()},
		"stream":   map[string]any{"enum": fault.StreamNames()},
		"toxicity": map[string]any{"type": "number", "exclusiveMinimum": 0, "maximum": 1},
		"node": map[string]any{"description": "the cluster node: a number from 1, leader (of the job's queue), follower or any",
			"anyOf": []any{map[string]any{"type": "integer", "minimum": 1, "maximum": fault.MaxNodes}, map[string]any{"enum": []string{fault.NodeLeader, fault.NodeFollower, fault.NodeAny}}}},
		"nodes": map[string]any{"description": "a partition's groups of nodes, e.g. [[1], [2, 3]]", "type": "array", "minItems": 2,
			"items": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "integer", "minimum": 1, "maximum": fault.MaxNodes}}},
		"queue": map[string]any{"type": "string", "description": "the queue of delete_queue or cancel_consumers: job, retry, dead or a queue's name"},
	}
	for _, name := range fault.AttrNames() {
		props[name] = map[string]any{"type": []string{"string", "integer"}, "description": "a toxic attribute (docs/faults.md)"}
	}
	return map[string]any{"type": "array", "maxItems": maxFaults, "items": map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"at", "target"}, "properties": props}}
}

// actionNames returns every action name of every target, each once.
func actionNames() []string {
	var out []string
	for _, a := range fault.Actions() {
		if !contains(out, a.Name) {
			out = append(out, a.Name)
		}
	}
	return out
}

func matrixSchema() map[string]any {
	return map[string]any{"type": "object", "maxProperties": 32,
		"additionalProperties": map[string]any{"type": "array", "minItems": 1, "maxItems": maxAxes}}
}

func gatesSchema() map[string]any {
	expr := map[string]any{"type": "string", "description": "metric operator threshold, e.g. p99(end_to_end) < 2s"}
	return map[string]any{"type": "array", "items": map[string]any{"anyOf": []any{
		expr,
		map[string]any{"type": "object", "additionalProperties": false, "required": []string{"expr"},
			"properties": map[string]any{"expr": expr, "when": map[string]any{"type": "object",
				"description": "matrix key → value: the gate applies to those variants only"},
				"abort": map[string]any{"type": "boolean",
					"description": "check the gate during the run too and end the variant once it fails for good"}}},
	}}}
}

func thresholdsSchema() map[string]any {
	return map[string]any{"type": "object", "propertyNames": map[string]any{"enum": comparedNames()},
		"additionalProperties": fractionSchema}
}

// defaultPhase holds a phase's defaults, for the schema.
var defaultPhase = loadgen.Phase{Size: defaultPhaseSize}

// comparedNames are the metrics baseline.thresholds may name, aliases included.
func comparedNames() []string {
	var out []string
	for _, m := range report.Metrics() {
		if m.Compare {
			out = append(append(out, m.Name), m.Aliases...)
		}
	}
	return out
}
