package main

import (
	"fmt"
	"os"

	"github.com/benchmq/bench/scenarios"
)

// cmdSchema is `bench schema`: the JSON Schema of scenario files, for editors
// (docs/scenario.schema.json is the same, kept current by a test).
func cmdSchema(args []string) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Println("usage: bench schema > scenario.schema.json\nPrints the JSON Schema of scenario files (draft-07), built from the parser's own key table.")
			return exitOK
		}
		fmt.Fprintln(os.Stderr, "usage: bench schema (no arguments)")
		return exitInput
	}
	if _, err := os.Stdout.Write(scenarios.JSONSchema()); err != nil {
		fmt.Fprintln(os.Stderr, "bench schema:", err)
		return exitEnv
	}
	return exitOK
}
