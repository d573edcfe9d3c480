package main

import (
	"fmt"

	"github.com/benchmq/bench/scenarios"
)

var schemaCLI = cli{
	name:  "schema",
	usage: "> scenario.schema.json",
	about: `Prints the JSON Schema (draft-07) of scenario files, built from the parser's own key table;
docs/scenario.schema.json is the same. Editors with a YAML language server complete and check
keys with it. Rules between keys are 'bench validate''s alone.`,
	examples: []string{
		"bench schema > scenario.schema.json",
		"# in a scenario file, for the YAML language server:",
		"# yaml-language-server: $schema=../docs/scenario.schema.json",
	},
	exits: exitsDefault,
}

// cmdSchema is `bench schema`: the JSON Schema of scenario files, for editors
// (docs/scenario.schema.json is the same, kept current by a test).
func cmdSchema(args []string, s stdio) int {
	fs := schemaCLI.flags()
	if code, done := schemaCLI.parse(fs, args, s); done {
		return code
	}
	if !schemaCLI.args(fs, 0, 0, s) {
		return exitInput
	}
	if _, err := s.out.Write(scenarios.JSONSchema()); err != nil {
		fmt.Fprintln(s.err, "bench schema:", err)
		return exitEnv
	}
	return exitOK
}
