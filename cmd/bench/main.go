// Command bench is a load-testing and chaos harness for RabbitMQ workers built on
// the worker runtime. See the README and docs/ for the scenario format and the
// result files.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/benchmq/bench/internal/buildinfo"
	"github.com/benchmq/bench/internal/perf"
)

// Exit codes (DESIGN.md §4.1); scripts rely on them.
const (
	exitOK    = 0 // every gate passed
	exitGate  = 1 // a gate or the baseline comparison failed
	exitInput = 2 // bad input: scenario, flags
	exitEnv   = 3 // environment failure: no broker, port taken, process died
)

type command struct {
	name    string
	summary string
	run     func(args []string, s stdio) int
}

func commands() []command {
	return []command{
		{"run", "run a scenario: FILE.yaml [--amqp-url URL] [--out DIR] [--set key=value]... [--baseline result.json]", cmdRun},
		{"validate", "check scenario files: FILE.yaml... (- reads standard input)", cmdValidate},
		{"plan", "show what a run would do, before anything starts: FILE.yaml", cmdPlan},
		{"compare", "compare two results: BASE.json NEW.json [--max-regression 15%]", func(a []string, s stdio) int { return runCompare(a, s.out, s.err) }},
		{"report", "re-render the HTML report: result.json [-o report.html]", cmdReport},
		{"worker", "run a simulated worker process (spawned by run; usable by hand)", cmdWorker},
		{"agent", "join runs on other hosts through the broker: --amqp-url URL [--name NAME] [--labels k=v]", cmdAgent},
		{"broker", "a private RabbitMQ node for local use: up | down", cmdBroker},
		{"perf", "measure the runtime and load generator against raw amqp091-go (see BENCHMARKS.md)", cmdPerf},
		{"schema", "print the JSON Schema of scenario files, for editors", cmdSchema},
		{"dlq", "dead-letter queues: ls | show | replay | purge QUEUE (docs/operations.md)", cmdDLQ},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

func dispatch(args []string, s stdio) int {
	if len(args) == 0 {
		usage(s.err)
		return exitInput
	}
	switch args[0] {
	case "-h", "--help":
		usage(s.out)
		return exitOK
	case "help":
		if len(args) > 1 {
			return dispatch([]string{args[1], "--help"}, s)
		}
		usage(s.out)
		return exitOK
	case "--version", "version":
		fmt.Fprintln(s.out, buildinfo.Read())
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if c.name == "run" || c.name == "worker" {
				defer profileFromEnv(c.name, s)()
			}
			return c.run(args[1:], s)
		}
	}
	fmt.Fprintf(s.err, "bench: unknown command %q\n\n", args[0])
	usage(s.err)
	return exitInput
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bench COMMAND [ARGS]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nexit codes: 0 gates passed, 1 a gate or the baseline failed, 2 bad input, 3 environment failure")
	fmt.Fprintln(w, "run 'bench COMMAND --help' for a command's flags and examples; 'bench --version' for this build")
}

// profileFromEnv writes a CPU profile of this process to $BENCH_PROFILE_DIR
// when it is set (`bench perf --profile` sets it for the pipeline's runner and
// workers); it returns the function that stops it.
func profileFromEnv(cmd string, s stdio) func() {
	dir := os.Getenv(perf.EnvProfileDir)
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(s.err, "bench: profile:", err)
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.cpu.pprof", cmd, os.Getpid())))
	if err != nil {
		fmt.Fprintln(s.err, "bench: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(s.err, "bench: profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(s.err, "bench: profile:", err)
		}
	}
}
