package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/scenarios"
)

func cmdValidate(args []string) int {
	fs := pflag.NewFlagSet("bench validate", pflag.ContinueOnError)
	sets := fs.StringArray("set", nil, "override a scenario key before validating (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bench validate FILE.yaml... [--set key=value]...\nPrints every problem as file:line:col: message; exits 2 if any file is invalid. FILE - reads standard input.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitInput
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitInput
	}
	code := exitOK
	for _, path := range fs.Args() {
		sc, err := loadScenario(path, *sets)
		if err == nil {
			_, err = sc.Variants()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = exitInput
			continue
		}
		fmt.Printf("%s: ok\n", path)
	}
	return code
}

// loadScenario reads a scenario file, or standard input for "-".
func loadScenario(path string, sets []string) (*scenarios.Scenario, error) {
	if path != "-" {
		return scenarios.Load(path, sets)
	}
	data, err := scenarios.Read(os.Stdin, "<stdin>")
	if err != nil {
		return nil, err
	}
	return scenarios.Parse("<stdin>", data, sets)
}
