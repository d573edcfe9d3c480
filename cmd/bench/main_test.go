package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// The runner spawns this test binary as its worker processes (`bench run`
// starts os.Executable() worker ...), so it answers as bench does then.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_WORKER") == "1" && len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(dispatch(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
	}
	goleak.VerifyTestMain(privateNodeMain{m})
}

// syncBuffer is a bytes.Buffer a test may read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bench runs a command as main does, with stdin, and returns its exit code and output.
func bench(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code = dispatch(args, stdio{in: stdin, out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func discard() stdio { return stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard} }

func TestExitCodesForBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: Bad Name\ntask: bench.job.process\nload: [{spike: {jobs: 1}}]\nworkers: {prefetch: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitInput},
		{[]string{"nope"}, exitInput},
		{[]string{"--help"}, exitOK},
		{[]string{"help", "run"}, exitOK},
		{[]string{"validate"}, exitInput},
		{[]string{"validate", "../../scenarios/spike.yaml"}, exitOK},
		{[]string{"validate", bad}, exitInput},
		{[]string{"validate", filepath.Join(dir, "missing.yaml")}, exitInput},
		{[]string{"run", bad}, exitInput},
		{[]string{"run", "../../scenarios/spike.yaml", "--set", "workers.prefetch=lots"}, exitInput},
		{[]string{"run", "../../scenarios/spike.yaml", "--namespace", "Not-OK"}, exitInput},
		{[]string{"run", "../../scenarios/spike.yaml", "--repeat", "0"}, exitInput},
		// An own worker's queues are its own: no renaming, no deleting.
		{[]string{"run", "../../scenarios/examples/node-worker.yaml", "--namespace", "auto"}, exitInput},
		{[]string{"run", "../../scenarios/examples/node-worker.yaml", "--reset-queues"}, exitInput},
		{[]string{"validate", "../../scenarios/examples/node-worker.yaml"}, exitOK},
		{[]string{"run", "--no-such-flag", "x.yaml"}, exitInput},
		{[]string{"run", "a.yaml", "b.yaml"}, exitInput},
		{[]string{"run", "--help"}, exitOK},
		{[]string{"worker", "--help"}, exitOK},
		{[]string{"worker"}, exitInput},
		{[]string{"plan"}, exitInput},
		{[]string{"plan", bad}, exitInput},
		{[]string{"schema", "extra"}, exitInput},
		{[]string{"broker"}, exitInput},
		{[]string{"broker", "sideways"}, exitInput},
	} {
		if got, _, _ := bench(t, nil, tc.args...); got != tc.want {
			t.Errorf("bench %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}

// Every command answers a bad flag with pflag's message and its usage line
// (exit 2), and --help with its help on stdout: flags, examples, exit codes.
func TestEveryCommandExplainsItsFlags(t *testing.T) {
	for _, cmd := range [][]string{{"run"}, {"validate"}, {"plan"}, {"report"}, {"worker"}, {"perf"}, {"schema"}, {"broker", "up"}, {"broker", "down"}} {
		name := strings.Join(cmd, " ")
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := bench(t, nil, append(cmd, "--no-such-flag")...)
			if code != exitInput || stdout != "" {
				t.Errorf("bad flag: exit %d, stdout %q", code, stdout)
			}
			for _, want := range []string{"bench " + name + ": unknown flag: --no-such-flag", "usage: bench " + name + " ", "bench " + name + " --help"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("bad flag: stderr lacks %q:\n%s", want, stderr)
				}
			}
			code, stdout, stderr = bench(t, nil, append(cmd, "--help")...)
			if code != exitOK || stderr != "" {
				t.Errorf("--help: exit %d, stderr %q", code, stderr)
			}
			for _, want := range []string{"usage: bench " + name + " ", "Examples:\n  bench ", "Exit codes:\n  0 "} {
				if !strings.Contains(stdout, want) {
					t.Errorf("--help: stdout lacks %q:\n%s", want, stdout)
				}
			}
			if name != "schema" && !strings.Contains(stdout, "Flags:\n") {
				t.Errorf("--help lists no flags:\n%s", stdout)
			}
		})
	}
	// A flag whose value is bad says which and why.
	code, _, stderr := bench(t, nil, "report", "--width", "wide", "x.json")
	if code != exitInput || !strings.Contains(stderr, `invalid argument "wide" for "--width"`) || !strings.Contains(stderr, "usage: bench report") {
		t.Errorf("report --width wide: exit %d\n%s", code, stderr)
	}
}

// bench run --help says how the broker is chosen, the managed rule included,
// and what protects a shared broker.
func TestRunHelpExplainsTheBroker(t *testing.T) {
	_, stdout, _ := bench(t, nil, "run", "--help")
	for _, want := range []string{"--amqp-url if given", "broker: {managed: true}", "$AMQP_URL", "broker.url",
		"a private rabbitmq-server node", "--namespace auto", "--reset-queues", "exit 3", "--metrics-addr"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bench run --help lacks %q", want)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		code, stdout, _ := bench(t, nil, arg)
		if code != exitOK || !strings.HasPrefix(stdout, "bench ") || !strings.Contains(stdout, "go1.") {
			t.Errorf("bench %s: exit %d, %q", arg, code, stdout)
		}
	}
}
