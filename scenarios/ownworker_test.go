package scenarios

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/benchmq/bench/chaos/fault"
)

const ownBase = `name: own
task: orders.order.process
load:
  - steady: {rate: 10/s, for: 10s}
`

// The example decodes into what the runner needs.
func TestOwnWorkerKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	src := ownBase + `workers:
  command: [./bin/orders-worker, --log-level, info]
  env: {LOG_LEVEL: info, PORT: 8080}
  processes: 2
  prefetch: 50
  retry: {max_attempts: 3}
  ready: {log: "worker ready"}
job:
  publish: {queue: orders.orders.process}
  body: {template: '{"tid":"{{.TID}}","order":{{.Seq}},"sku":"{{randChoice "a" "b"}}"}'}
  tid: {json: tid}
completion:
  event: orders.processed
  failed_event: orders.failed
  tid: {json: tid}
  dead_queue: orders.orders.process.dead
dependencies:
  - {name: payments, upstream: 127.0.0.1:8081, env: PAYMENTS_ADDR}
faults:
  - {at: 2s, for: 5s, target: dependency, name: payments, toxic: latency, latency: 2s}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := s.Workers
	if !reflect.DeepEqual(w.Command, []string{"./bin/orders-worker", "--log-level", "info"}) ||
		!reflect.DeepEqual(w.Env, map[string]string{"LOG_LEVEL": "info", "PORT": "8080"}) || w.Ready.Log != "worker ready" {
		t.Errorf("workers %+v", w)
	}
	if !reflect.DeepEqual(w.Given, []string{"prefetch", "retry.max_attempts"}) {
		t.Errorf("given %v, want the keys the file sets (not processes, not the defaults)", w.Given)
	}
	if s.Job.Publish != (Publish{Queue: "orders.orders.process"}) || s.Job.TID != (TIDPlace{JSON: "tid"}) || !strings.Contains(s.Job.Body.Template, "{{.TID}}") {
		t.Errorf("job %+v", s.Job)
	}
	want := Completion{Event: "orders.processed", FailedEvent: "orders.failed", TID: TIDPlace{JSON: "tid"}, DeadQueue: "orders.orders.process.dead"}
	if s.Completion != want || !s.OwnWorker() || !s.BlackBox() {
		t.Errorf("completion %+v", s.Completion)
	}
	if !reflect.DeepEqual(s.Dependencies, []NamedDependency{{Name: "payments", Upstream: "127.0.0.1:8081", Env: "PAYMENTS_ADDR"}}) {
		t.Errorf("dependencies %+v", s.Dependencies)
	}
	if f := s.Faults[0]; f.Name != "payments" || f.Target != fault.TargetDependency {
		t.Errorf("fault %+v", f.Spec)
	}
	if s.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", s.Dir(), dir)
	}
}

// workers.command varies in a matrix: an A/B of two builds of one worker.
func TestOwnWorkerCommandMatrix(t *testing.T) {
	s, err := Parse("s.yaml", []byte(ownBase+"workers: {command: [./old]}\nmatrix:\n  workers.command: [[./old], [./new, -v]]\n  workers.prefetch: [1, 50]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Variants()
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	if len(vs) != 4 || !reflect.DeepEqual(vs[3].Scenario.Workers.Command, []string{"./new", "-v"}) || vs[3].Scenario.Workers.Prefetch != 50 {
		t.Fatalf("variants %v: last %+v", names, vs[len(vs)-1].Scenario.Workers)
	}
	if names[0] == names[2] || !slices.Contains(vs[3].Scenario.Workers.Given, "prefetch") {
		t.Errorf("variant names %v; given %v", names, vs[3].Scenario.Workers.Given)
	}
}

// Each rule between the own-worker keys and the rest, at the key it is about.
func TestOwnWorkerErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"completion without command", "completion: {event: x.done}\n", "s.yaml:5:1: completion applies to workers.command"},
		{"env without command", "workers: {env: {A: b}}\n", "workers: env applies to workers.command"},
		{"publish without command", "job: {publish: {queue: q}}\n", "job: publish applies to workers.command"},
		{"simulated job key", "workers: {command: [w]}\njob: {work: 5ms}\n", "job: work is the simulated job's"},
		{"simulated dependency", "workers: {command: [w]}\ndependency: {latency: 1ms}\n", "dependency is the simulated dependency's"},
		{"empty command", "workers: {command: []}\n", "workers.command: needs the program"},
		{"command not a list", "workers: {command: ./w}\n", "workers.command: must be a list"},
		{"harness variable", "workers: {command: [w], env: {AMQP_URL: x}}\n", "AMQP_URL is set by bench"},
		{"bad ready regexp", "workers: {command: [w], ready: {log: '('}}\n", "workers.ready.log: bad regexp"},
		{"publish both", "workers: {command: [w]}\njob: {publish: {queue: q, exchange: x}}\n", "queue and exchange are exclusive"},
		{"routing key alone", "workers: {command: [w]}\njob: {publish: {queue: q, routing_key: k}}\n", "routing_key goes with exchange"},
		{"body both", "workers: {command: [w]}\njob: {body: {template: a, file: b}}\n", "exactly one of template and file"},
		{"bad template", "workers: {command: [w]}\njob: {body: {template: '{{.Nope}}'}}\n", "job.body.template"},
		{"missing body file", "workers: {command: [w]}\njob: {body: {file: nope.jsonl}}\n", "job.body.file: read body file"},
		{"json tid without body", "workers: {command: [w]}\njob: {tid: {json: tid}}\n", "json needs a JSON body"},
		{"tid both", "workers: {command: [w]}\ncompletion: {event: e, tid: {header: h, json: j}}\n", "exactly one of header and json"},
		{"completion without event", "workers: {command: [w]}\ncompletion: {dead_queue: d}\n", "completion: missing event"},
		{"amq name", "workers: {command: [w]}\ncompletion: {event: amq.fanout}\n", "names starting amq."},
		{"bad upstream", "workers: {command: [w]}\ndependencies: [{name: p, upstream: localhost, env: P}]\n", "want host:port"},
		{"duplicate dependency", "workers: {command: [w]}\ndependencies: [{name: p, upstream: 'h:1', env: P}, {name: p, upstream: 'h:2', env: Q}]\n", "name p is taken"},
		{"dependency env in workers.env", "workers: {command: [w], env: {P: x}}\ndependencies: [{name: p, upstream: 'h:1', env: P}]\n", "env P is set by workers.env too"},
		{"unknown dependency", "workers: {command: [w]}\ndependencies: [{name: p, upstream: 'h:1', env: P}]\nfaults: [{at: 1s, for: 1s, target: dependency, name: q, toxic: latency, latency: 1s}]\n", "no dependency named q; dependencies: p"},
		{"unnamed dependency fault", "workers: {command: [w]}\nfaults: [{at: 1s, for: 1s, target: dependency, toxic: latency, latency: 1s}]\n", "needs name: one of dependencies (none)"},
		{"name on the broker", "workers: {command: [w]}\nfaults: [{at: 1s, for: 1s, target: broker, name: q, toxic: latency, latency: 1s}]\n", "name picks a dependency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(ownBase+c.src), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// A body file is read relative to the scenario file, and with tid.json each
// line must be a JSON object.
func TestOwnWorkerBodyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jobs.jsonl"), []byte("{\"a\":1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "s.yaml")
	src := ownBase + "workers: {command: [w]}\njob: {body: {file: jobs.jsonl}, tid: {json: tid}}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file, nil); err == nil || !strings.Contains(err.Error(), "jobs.jsonl:2: the body is not a JSON object") {
		t.Errorf("error %v, want line 2 named", err)
	}
	if _, err := Load(file, []string{"job.tid={header: x-id}"}); err != nil {
		t.Errorf("a file of any bodies with the TID in a header: %v", err)
	}
}
