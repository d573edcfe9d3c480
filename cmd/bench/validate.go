package main

import (
	"fmt"
	"io"

	"github.com/benchmq/bench/scenarios"
)

var validateCLI = cli{
	name:  "validate",
	usage: "FILE.yaml... [--set key=value]...",
	about: `Parses and validates each scenario file, every matrix combination included, without
running anything. Every problem is printed as file:line:col: message (or --set key: message).
FILE - reads the scenario from standard input. A file may be at most 1 MiB; a variant at most
100,000,000 jobs; a matrix at most 1000 combinations. 'bench plan FILE' shows what a run
would do.`,
	examples: []string{
		"bench validate scenarios/*.yaml",
		"bench validate scenarios/spike.yaml --set workers.prefetch=0",
		"generate-scenario | bench validate -",
	},
	exits: exitsCheck,
}

func cmdValidate(args []string, s stdio) int {
	fs := validateCLI.flags()
	sets := fs.StringArray("set", nil, "override a scenario key before validating (repeatable)")
	if code, done := validateCLI.parse(fs, args, s); done {
		return code
	}
	if !validateCLI.args(fs, 1, -1, s) {
		return exitInput
	}
	code := exitOK
	for _, path := range fs.Args() {
		sc, err := loadScenario(path, *sets, s.in)
		if err == nil {
			_, err = sc.Variants()
		}
		if err != nil {
			fmt.Fprintln(s.err, err)
			code = exitInput
			continue
		}
		fmt.Fprintf(s.out, "%s: ok\n", path)
	}
	return code
}

// loadScenario reads a scenario file, or stdin for "-".
func loadScenario(path string, sets []string, stdin io.Reader) (*scenarios.Scenario, error) {
	if path != "-" {
		return scenarios.Load(path, sets)
	}
	data, err := scenarios.Read(stdin, "<stdin>")
	if err != nil {
		return nil, err
	}
	return scenarios.Parse("<stdin>", data, sets)
}
