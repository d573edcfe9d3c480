package scenarios

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid scenario; cases append lines from line 5 on.
const base = `name: t
task: bench.job.process
load:
  - spike: {jobs: 10}
`

// TestParseErrors is one table of bad input and the error it must produce;
// its length is the table's.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		sets []string
		want string // "line:col: message substring"
	}{
		{"unknown top key", base + "wrkers: {}\n", nil, "5:1: unknown key wrkers; did you mean workers?"},
		{"unknown nested key", base + "workers:\n  prefech: 3\n", nil, "6:3: workers: unknown key prefech; did you mean prefetch?"},
		{"duration without unit", base + "workers: {timeout: 2}\n", nil, `5:20: workers.timeout: bad duration "2": needs a unit`},
		{"bad duration", base + "drain_timeout: 1x\n", nil, `5:16: drain_timeout: bad duration "1x"`},
		{"negative duration", base + "drain_timeout: -1s\n", nil, `5:16: drain_timeout: bad duration "-1s": must not be negative`},
		{"zero drain", base + "drain_timeout: 0\n", nil, `5:16: drain_timeout: must be above zero`},
		{"bad size", base + "job: {hold: 4KB5}\n", nil, `5:13: job.hold: bad size "4KB5"`},
		{"fractional bytes", base + "job: {hold: 1.5B}\n", nil, `5:13: job.hold: bad size "1.5B": not a whole number of bytes`},
		{"size too large", base + "job: {hold: 2GiB}\n", nil, `5:13: job.hold: 2147483648 bytes is more than the limit`},
		{"bad rate", "name: t\ntask: bench.job.process\nload:\n  - steady: {rate: 200/x, for: 1s}\n", nil, `4:20: load.0.steady.rate: bad rate "200/x"`},
		{"zero rate", "name: t\ntask: bench.job.process\nload:\n  - steady: {rate: 0/s, for: 1s}\n", nil, `4:20: load.0.steady.rate: must be above zero`},
		{"missing phase key", "name: t\ntask: bench.job.process\nload:\n  - steady: {rate: 5/s}\n", nil, `4:13: load.0.steady: missing for`},
		{"two phases in one item", "name: t\ntask: bench.job.process\nload:\n  - {spike: {jobs: 1}, ramp: {from: 1, to: 2, over: 1s}}\n", nil, `4:5: load.0: holds more than one phase`},
		{"unknown phase", "name: t\ntask: bench.job.process\nload:\n  - burst: {jobs: 1}\n", nil, `4:5: load.0: unknown key burst`},
		{"empty load", "name: t\ntask: bench.job.process\nload: []\n", nil, `3:7: load: needs at least one phase`},
		{"wrong type", base + "workers: {processes: two}\n", nil, `5:22: workers.processes: must be an integer, got "two"`},
		{"bool for string", base + "description: true\n", nil, `5:14: description: must be a string, got true`},
		{"mapping for list", base + "gates: {a: b}\n", nil, `5:8: gates: must be a list, got a mapping`},
		{"missing name", "task: bench.job.process\nload:\n  - spike: {jobs: 10}\n", nil, "1:1: missing name"},
		{"null name", "name:\ntask: bench.job.process\nload:\n  - spike: {jobs: 10}\n", nil, "1:1: missing name"},
		{"task and event", base + "event: job.created\n", nil, "5:1: task and event are exclusive"},
		{"neither task nor event", "name: t\nload:\n  - spike: {jobs: 10}\n", nil, "1:1: missing task or event"},
		{"bad scenario name", "name: Spike_1\ntask: bench.job.process\nload:\n  - spike: {jobs: 10}\n", nil, `1:7: name: "Spike_1" must match [a-z0-9-]+`},
		{"short task", "name: t\ntask: bench.job\nload:\n  - spike: {jobs: 10}\n", nil, `2:7: task: invalid task name "bench.job": want at least 3 segments (app.model.verb), got 2`},
		{"bad task segment", "name: t\ntask: bench.Job.process\nload:\n  - spike: {jobs: 10}\n", nil, `2:7: task: invalid task name "bench.Job.process": segment 2`},
		{"task of another app", base + "app: api\n", nil, `2:7: task: task "bench.job.process" belongs to app "bench", not "api"`},
		{"event needs app", "name: t\nevent: job.created\nload:\n  - spike: {jobs: 10}\n", nil, `2:8: event: needs app`},
		{"short event", "name: t\napp: a\nevent: job\nload:\n  - spike: {jobs: 10}\n", nil, `3:8: event: invalid event name "job": want at least 2 segments`},
		{"bad emit", base + "job: {emit: Job.done}\n", nil, `5:13: job.emit: invalid event name "Job.done": segment 1`},
		{"rate out of range", base + "job: {fail_rate: 1.5}\n", nil, `5:18: job.fail_rate: must be between 0 and 1, got 1.5`},
		{"negative count", base + "workers: {processes: -1}\n", nil, `5:22: workers.processes: must be between 1 and 256, got -1`},
		{"prefetch too large", base + "workers: {prefetch: 70000}\n", nil, `5:21: workers.prefetch: must be between 0 and 65535`},
		{"bad queue type", base + "queue: {type: stream}\n", nil, `5:15: queue.type: must be one of classic, quorum, got "stream"`},
		{"max below min delay", base + "workers: {retry: {min_delay: 1s, max_delay: 500ms}}\n", nil, "5:45: workers.retry: retry max delay 500ms: must not be below min delay 1s"},
		{"max below default min delay", base + "workers: {retry: {max_delay: 50ms}}\n", nil, "5:30: workers.retry: retry max delay 50ms: must not be below min delay 100ms"},
		{"bad retry mode", base + "workers: {retry: {mode: sleep}}\n", nil, `5:25: workers.retry.mode: must be one of broker, inprocess`},
		{"zero failure ratio", base + "workers: {breaker: {failure_ratio: 0}}\n", nil, `5:36: workers.breaker.failure_ratio: must be above 0`},
		{"lognormal p99 below p50", base + "job: {work: {dist: lognormal, p50: 5ms, p99: 1ms}}\n", nil, `5:46: job.work: p99 1ms is below p50 5ms`},
		{"dist key of another kind", base + "job: {work: {dist: exponential, mean: 5ms, p99: 1ms}}\n", nil, `5:44: job.work: p99 is not used by dist exponential`},
		{"unknown dist", base + "job: {work: {dist: gamma}}\n", nil, `5:20: job.work.dist: must be one of fixed, exponential, lognormal`},
		{"work without unit", base + "job: {work: 5}\n", nil, `5:13: job.work: must be a duration or {dist: ...}`},
		{"external broker restart", base + "broker: {url: 'amqp://guest:secret@h:5672/'}\nfaults:\n  - {at: 1s, target: broker, action: restart}\n", nil,
			"7:5: broker restart needs a managed broker"},
		{"bad broker url", base + "broker: {url: 'http://guest:secret@h/'}\n", nil, "5:15: broker.url: must be an amqp:// or amqps:// URL"},
		{"matrix unknown key", base + "matrix:\n  workers.prefech: [1, 2]\n", nil, "6:3: workers: unknown key prefech; did you mean prefetch?"},
		{"matrix wrong value type", base + "matrix:\n  workers.prefetch: [1, x]\n", nil, `6:25: workers.prefetch: must be an integer, got "x" (in matrix variant workers.prefetch=x)`},
		{"matrix not a list", base + "matrix:\n  workers.prefetch: 1\n", nil, `6:21: matrix.workers.prefetch: must be a non-empty list`},
		{"matrix into a scalar", base + "matrix:\n  name.x: [1]\n", nil, `6:3: matrix: name is "t", not a mapping or a list`},
		{"matrix combination", base + "workers: {retry: {max_delay: 1s}}\nmatrix:\n  workers.retry.min_delay: [10ms, 2s]\n", nil,
			"5:30: workers.retry: retry max delay 1s: must not be below min delay 2s (in matrix variant workers.retry.min_delay=2s)"},
		{"unknown toxic", base + "faults:\n  - {at: 1s, for: 1s, target: broker, toxic: latncy}\n", nil, `6:46: faults.0: unknown toxic "latncy"; want one of bandwidth, latency, limit_data, reset_peer, slicer, slow_close, timeout; did you mean latency?`},
		{"attribute of another toxic", base + "faults:\n  - {at: 1s, for: 1s, target: broker, toxic: bandwidth, rate: 100, latency: 1s}\n", nil,
			"6:68: faults.0: latency is not an attribute of toxic bandwidth (it takes rate)"},
		{"toxic attribute required", base + "faults:\n  - {at: 1s, for: 1s, target: broker, toxic: latency}\n", nil, "6:5: faults.0: toxic latency needs latency"},
		{"toxic ms granularity", base + "faults:\n  - {at: 1s, for: 1s, target: broker, toxic: latency, latency: 1500us}\n", nil,
			"6:64: faults.0.latency: 1.5ms is not a whole number of 1ms"},
		{"missing for", base + "faults:\n  - {at: 1s, target: broker, toxic: latency, latency: 1s}\n", nil, "6:5: faults.0: missing for (how long the latency lasts)"},
		{"cluster without managed", base + "broker: {nodes: 3}\n", nil, "5:9: broker.nodes: a cluster of 3 nodes is started by bench: set broker.managed: true"},
		{"node beyond the cluster", base + "broker: {managed: true, nodes: 3}\nfaults:\n  - {at: 1s, target: broker, node: 4, action: kill}\n", nil, "7:5: node 4: the broker has 3 node(s)"},
		{"bad node word", base + "broker: {managed: true, nodes: 3}\nfaults:\n  - {at: 1s, target: broker, node: leadr, action: kill}\n", nil, `7:36: faults.0: node must be a number from 1 to 9, leader, follower or any, got "leadr"`},
		{"partition leaves a node out", base + "broker: {managed: true, nodes: 3}\nfaults:\n  - {at: 1s, for: 1s, target: broker, action: partition, nodes: [[1], [2]]}\n", nil, "7:5: node 3 is in no group"},
		{"partition of one node", base + "broker: {managed: true}\nfaults:\n  - {at: 1s, for: 1s, target: broker, action: partition, nodes: [[1], [2]]}\n", nil, "7:5: a partition needs a cluster"},
		{"bad groups", base + "broker: {managed: true, nodes: 3}\nfaults:\n  - {at: 1s, for: 1s, target: broker, action: partition, nodes: [1, 2]}\n", nil, "7:65: faults.0.nodes: must be a list of groups"},
		{"delete without queue", base + "faults:\n  - {at: 1s, target: broker, action: delete_queue}\n", nil, "6:5: faults.0: missing queue"},
		{"queue on a kill", base + "broker: {managed: true}\nfaults:\n  - {at: 1s, target: broker, action: kill, queue: job}\n", nil, "7:51: faults.0: queue applies to actions delete_queue, cancel_consumers only"},
		{"instant with for", base + "faults:\n  - {at: 1s, for: 2s, target: worker, action: kill}\n", nil, "6:14: faults.0: action kill of the worker is instantaneous: remove for"},
		{"worker toxic", base + "faults:\n  - {at: 1s, for: 2s, target: worker, toxic: latency, latency: 1s}\n", nil, "6:46: faults.0: a worker takes an action"},
		{"worker action", base + "faults:\n  - {at: 1s, target: worker, action: restart}\n", nil, `6:38: faults.0: action must be one of kill, stop, pause for target worker, got "restart"`},
		{"two fault kinds", base + "faults:\n  - {at: 1s, for: 1s, target: broker, down: true, action: block}\n", nil, "6:5: faults.0: needs exactly one of toxic, down: true or action"},
		{"stream on action", base + "faults:\n  - {at: 1s, for: 1s, target: broker, action: block, stream: up}\n", nil, "6:62: faults.0: stream applies to toxics only"},
		{"bad target", base + "faults:\n  - {at: 1s, for: 1s, target: db, down: true}\n", nil, `6:31: faults.0: target must be one of dependency, broker, worker, got "db"`},
		{"fault after the run", base + "faults:\n  - {at: 200s, target: worker, action: kill}\n", nil, "6:5: fault at 3m20s starts after the run ends (load 0s + drain_timeout 2m0s)"},
		{"dependency fault without calls", base + "faults:\n  - {at: 1s, for: 1s, target: dependency, down: true}\n", nil, "6:5: a dependency fault needs job.dependency_calls > 0"},
		{"duplicate key", base + "seed: 1\nseed: 2\n", nil, "6:1: duplicate key seed"},
		{"gate unknown metric", base + "gates:\n  - p99(e2e) < 2s\n", nil, `6:5: gates.0: unknown metric p99(e2e); want one of p99(end_to_end)`},
		{"gate unit column", base + "gates:\n  - lost == 5ms\n", nil, `6:14: gates.0: lost is a count`},
		{"quoted gate column", base + "gates:\n  - \"lost = 0\"\n", nil, `6:11: gates.0: unknown operator "="`},
		{"gate not a string", base + "gates:\n  - 5\n", nil, `6:5: gates.0: must be an expression`},
		{"baseline metric", base + "baseline: {max_regression: 15%, thresholds: {p99(e2e): 10%}}\n", nil, "5:46: baseline.thresholds: p99(e2e) is not a compared metric"},
		{"baseline fraction", base + "baseline: {max_regression: 15}\n", nil, `5:28: baseline.max_regression: bad fraction "15": must be in [0, 1]; write 15% for a percentage`},
		{"chaos url", base + "chaos: {toxiproxy_url: localhost}\n", nil, "5:24: chaos.toxiproxy_url: must be an http://"},
		{"yaml syntax", base + "workers: {processes: 1\n", nil, "did not find expected ',' or '}'"},
		{"two documents", base + "---\nname: u\n", nil, "5:1: a scenario file holds one YAML document"},
		{"top level list", "- a\n", nil, "1:1: must be a mapping, got a list"},
		{"set bad value", base, []string{"workers.prefetch=-5"}, "--set workers.prefetch: must be between 0 and 65535, got -5"},
		{"set unknown key", base, []string{"workers.prefech=5"}, "--set workers.prefech: workers: unknown key prefech"},
		{"set no equals", base, []string{"workers.prefetch"}, "--set workers.prefetch: want key=value"},
		{"set bad yaml", base, []string{"gates=[a"}, "--set gates: bad value"},
		{"set index out of range", base, []string{"load.3.spike.jobs=1"}, "--set load.3.spike.jobs: load: no item 3 (the list has 1)"},
		{"set into scalar", base, []string{"name.x=1"}, `--set name.x: name is "t", not a mapping or a list`},
		{"set empty segment", base, []string{"workers..prefetch=1"}, `--set workers..prefetch: bad key path "workers..prefetch": empty segment`},
		{"set nested value", base, []string{"job={work: 5x}"}, `--set job: job.work: must be a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.doc), tt.sets)
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			want := tt.want
			if !strings.HasPrefix(want, "--set") && !strings.HasPrefix(want, "did not") {
				want = "s.yaml:" + want
			}
			for _, e := range es {
				if strings.Contains(e.Error(), want) {
					return
				}
			}
			t.Errorf("errors:\n%v\nwant one containing:\n%s", err, want)
		})
	}
}

func TestParseReportsAllErrorsInOrder(t *testing.T) {
	doc := "name: Bad\ntask: bench.job\nworkers: {processes: 0, prefetch: -1}\nload:\n  - spike: {jobs: 0}\nextra: 1\n"
	_, err := Parse("s.yaml", []byte(doc), []string{"job.hold=1x"})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []string{
		"s.yaml:1:7: name:",
		"s.yaml:2:7: task:",
		"s.yaml:3:22: workers.processes:",
		"s.yaml:3:35: workers.prefetch:",
		"s.yaml:5:19: load.0.spike.jobs: must be between 1 and 1073741824, got 0",
		"s.yaml:6:1: unknown key extra",
		"--set job.hold: bad size",
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(es[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, es[i].Error(), w)
		}
	}
}

func TestErrorsNeverShowPassword(t *testing.T) {
	doc := base + "broker: {url: 'amqp://guest:hunter2@h:5672/', managed: maybe}\nfaults:\n  - {at: 1s, target: broker, action: kill}\n"
	_, err := Parse("s.yaml", []byte(doc), []string{"broker.url=ftp://u:hunter2@h/"})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password:\n%v", err)
	}
}

func TestCheckBroker(t *testing.T) {
	doc := base + "faults:\n  - {at: 1s, target: broker, action: restart}\n  - {at: 2s, target: broker, action: kill}\n  - {at: 3s, for: 1s, target: broker, action: block}\n"
	s, err := Parse("s.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBroker(true); err != nil {
		t.Errorf("CheckBroker(managed) = %v, want nil", err)
	}
	err = s.CheckBroker(false)
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("CheckBroker(external) = %v, want 3 errors (every broker action)", err)
	}
	if got := es[0].Error(); got != "s.yaml:6:5: broker restart needs a managed broker (broker.managed: true), but the broker is external" {
		t.Errorf("first error = %q", got)
	}
	if !strings.HasPrefix(es[1].Error(), "s.yaml:7:5: broker kill") {
		t.Errorf("second error = %q", es[1].Error())
	}
}
