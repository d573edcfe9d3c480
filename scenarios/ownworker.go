package scenarios

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/benchmq/bench/internal/loadgen"
)

// Measuring the user's own worker: workers.command runs it instead of
// `bench worker`. Built on the runtime it reports to the runner itself
// (white-box); written in anything else, bench sees its jobs finish through
// the completion events it publishes (black-box, the completion block).

// Ready says when an own worker process is ready for load.
type Ready struct {
	// Log is a regexp a line of the process's output must match; "" means the
	// mode's default (the runtime's hello, or the queue's consumers).
	Log string
}

// Publish is where the harness publishes the jobs: a queue (through the
// default exchange), or an exchange with a routing key. Zero: the task's
// queue, or the event's exchange.
type Publish struct {
	Queue      string
	Exchange   string
	RoutingKey string
}

// Body is how each job's body is made: a text/template ({{.TID}}, {{.Seq}},
// randChoice, randInt), or the lines of a file replayed in order and cycled.
// Zero: the phase's size in filler bytes.
type Body struct {
	Template string
	File     string // as written: relative to the scenario file's directory
}

// TIDPlace is where a TID travels in a message: a header, or a top-level
// string field of a JSON body. Zero: the runtime's TID header.
type TIDPlace struct {
	Header string
	JSON   string
}

// Completion is how bench sees a job finish from the outside.
type Completion struct {
	Event       string   // fanout exchange the worker publishes to when a job is done (required)
	FailedEvent string   // the job's final failure; optional
	TID         TIDPlace // where the TID is in those events
	DeadQueue   string   // final failures parked here count too; optional
}

// NamedDependency is a real downstream service of the worker, put behind a
// proxy that faults name.
type NamedDependency struct {
	Name     string
	Upstream string // host:port
	Env      string // the variable that gets the proxy's host:port
}

// OwnWorker reports whether the scenario runs the user's worker.
func (s *Scenario) OwnWorker() bool { return len(s.Workers.Command) > 0 }

// BlackBox reports whether jobs are accounted from completion events.
func (s *Scenario) BlackBox() bool { return s.Completion.Event != "" }

// Dir is the directory relative paths of the scenario are read from: the
// scenario file's own (the working directory for standard input).
func (s *Scenario) Dir() string { return dirOf(s.File) }

func dirOf(file string) string {
	if file == "" || file == "-" || file == "<stdin>" {
		return "."
	}
	return filepath.Dir(file)
}

// harnessEnv reports whether bench sets the variable for an own worker
// (AMQP_URL, BENCH_*): workers.env and dependencies may not.
func harnessEnv(name string) bool { return name == "AMQP_URL" || strings.HasPrefix(name, "BENCH_") }

var (
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	depNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// runtimeKeys are the workers keys an own worker built on the runtime takes
// from the scenario (Workers.Given).
var runtimeKeys = []string{"prefetch", "concurrency", "timeout", "rate_limit", "burst", "retry", "breaker"}

// simulatedJobKeys are the job keys only the simulated worker reads.
var simulatedJobKeys = []string{"work", "fail_rate", "fatal_rate", "dependency_calls", "hold", "emit"}

// ownWorkerFields are the workers keys of an own worker.
var ownWorkerFields = []field[Workers]{
	customKey(meta{Name: "command", Doc: "run your own worker (argv) instead of bench worker; relative paths from the scenario file's directory"},
		func() map[string]any {
			return map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1}}
		}, decodeCommand),
	customKey(meta{Name: "env", Doc: "variables added to the command's environment"},
		func() map[string]any {
			return map[string]any{"type": "object", "propertyNames": map[string]any{"pattern": envNameRe.String()},
				"additionalProperties": map[string]any{"type": []string{"string", "number", "boolean"}}}
		}, decodeEnv),
	objKey(meta{Name: "ready", Doc: "when a command's process is ready"}, func(w *Workers) *Ready { return &w.Ready }, []field[Ready]{
		strKey(meta{Name: "log", Doc: "a regexp a line of the process's output matches once it is ready"}, checkRegexp,
			func(r *Ready) *string { return &r.Log }),
	}, nil),
}

// ownJobFields are the job keys of an own worker.
var ownJobFields = []field[Job]{
	objKey(meta{Name: "publish", Doc: "where the jobs go: {queue: Q} or {exchange: X, routing_key: K}; default the task's queue"},
		func(j *Job) *Publish { return &j.Publish }, []field[Publish]{
			strKey(meta{Name: "queue", Doc: "a queue, through the default exchange"}, checkBrokerName, func(p *Publish) *string { return &p.Queue }),
			strKey(meta{Name: "exchange", Doc: "an exchange"}, checkBrokerName, func(p *Publish) *string { return &p.Exchange }),
			strKey(meta{Name: "routing_key", Doc: "the routing key with exchange"}, nil, func(p *Publish) *string { return &p.RoutingKey }),
		}, checkPublish),
	objKey(meta{Name: "body", Doc: "each job's body: {template: T} or {file: F}"}, func(j *Job) *Body { return &j.Body }, []field[Body]{
		strKey(meta{Name: "template", Doc: "a Go text/template: {{.TID}}, {{.Seq}}, randChoice, randInt"}, checkTemplate,
			func(b *Body) *string { return &b.Template }),
		strKey(meta{Name: "file", Doc: "one body a line, replayed in order and cycled; relative to the scenario file"}, nil,
			func(b *Body) *string { return &b.File }),
	}, checkBody),
	tidKey(meta{Name: "tid", Doc: "where the harness writes each job's TID: {header: NAME} or {json: FIELD}; default the runtime's TID header"},
		func(j *Job) *TIDPlace { return &j.TID }),
}

var completionFields = []field[Completion]{
	strKey(meta{Name: "event", Required: true, Doc: "the fanout exchange the worker publishes to when a job is done"}, checkBrokerName,
		func(c *Completion) *string { return &c.Event }),
	strKey(meta{Name: "failed_event", Doc: "the fanout exchange of a job's final failure (its recovery ran)"}, checkBrokerName,
		func(c *Completion) *string { return &c.FailedEvent }),
	tidKey(meta{Name: "tid", Doc: "where the TID is in those events: {header: NAME} or {json: FIELD}; default the runtime's TID header"},
		func(c *Completion) *TIDPlace { return &c.TID }),
	strKey(meta{Name: "dead_queue", Doc: "a queue where final failures are parked; they count as recovered"}, checkBrokerName,
		func(c *Completion) *string { return &c.DeadQueue }),
}

var dependencyItemFields = []field[NamedDependency]{
	patternKey(meta{Name: "name", Required: true, Doc: "what faults call it (target: dependency, name: ...)"}, depNameRe, "[a-z][a-z0-9_-]*",
		func(d *NamedDependency) *string { return &d.Name }),
	strKey(meta{Name: "upstream", Required: true, Doc: "host:port of the service"}, checkHostPort,
		func(d *NamedDependency) *string { return &d.Upstream }),
	patternKey(meta{Name: "env", Required: true, Doc: "the variable that gets the proxy's host:port"}, envNameRe, "a variable name",
		func(d *NamedDependency) *string { return &d.Env }),
}

func tidKey[T any](m meta, at func(*T) *TIDPlace) field[T] {
	return objKey(m, at, []field[TIDPlace]{
		strKey(meta{Name: "header", Doc: "a message header"}, nil, func(p *TIDPlace) *string { return &p.Header }),
		strKey(meta{Name: "json", Doc: "a top-level string field of a JSON body"}, nil, func(p *TIDPlace) *string { return &p.JSON }),
	}, checkTIDPlace)
}

func decodeCommand(d *decoder, n *yaml.Node, path string, w *Workers) {
	items := d.list(n, path, 1000)
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errf(n, path, "needs the program, e.g. [./bin/my-worker, --flag]")
		return
	}
	var argv []string
	for i, item := range items {
		item = deref(item)
		if item == nil || item.Kind != yaml.ScalarNode || item.Tag == "!!null" || item.Tag == "!!map" {
			d.errf(item, path+"."+strconv.Itoa(i), "must be a string, got %s", describe(item))
			return
		}
		argv = append(argv, item.Value)
	}
	if len(argv) > 0 && argv[0] == "" {
		d.errf(items[0], path+".0", "the program must not be empty")
		return
	}
	w.Command = argv
}

func decodeEnv(d *decoder, n *yaml.Node, path string, w *Workers) {
	o := d.object(n, path)
	if o == nil {
		return
	}
	w.Env = map[string]string{}
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		k, v := deref(o.n.Content[i]), deref(o.n.Content[i+1])
		if k == nil || o.keys[k.Value] != k {
			continue
		}
		switch {
		case !envNameRe.MatchString(k.Value):
			d.errf(k, path, "%q is not a variable name", k.Value)
			continue
		case harnessEnv(k.Value):
			d.errf(k, path, "%s is set by bench", k.Value)
			continue
		}
		if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.errf(v, join(path, k.Value), "must be a string, got %s", describe(v))
			continue
		}
		w.Env[k.Value] = v.Value
	}
}

func decodeDependencies(d *decoder, n *yaml.Node, path string, s *Scenario) {
	for i, item := range d.list(n, path, 100) {
		var dep NamedDependency
		if decodeFields(d, item, path+"."+strconv.Itoa(i), dependencyItemFields, &dep, nil) != nil {
			s.Dependencies = append(s.Dependencies, dep)
		}
	}
}

func dependenciesSchema() map[string]any {
	return map[string]any{"type": "array", "maxItems": 100, "items": objectSchema(dependencyItemFields, &NamedDependency{})}
}

// checkWorkers records which runtime settings the scenario gives itself.
func checkWorkers(_ *decoder, o *obj, w *Workers) {
	w.Given = nil
	for _, k := range runtimeKeys {
		v := o.vals[k]
		if v == nil {
			continue
		}
		if k != "retry" && k != "breaker" {
			w.Given = append(w.Given, k)
			continue
		}
		if v.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(v.Content); i += 2 {
				if sk := deref(v.Content[i]); sk != nil {
					w.Given = append(w.Given, k+"."+sk.Value)
				}
			}
		}
	}
}

func checkPublish(d *decoder, o *obj, p *Publish) {
	switch {
	case o.has("queue") && o.has("exchange"):
		d.errf(o.keys["exchange"], o.path, "queue and exchange are exclusive: a queue is published to through the default exchange")
	case !o.has("queue") && !o.has("exchange"):
		d.errf(o.n, o.path, "needs queue or exchange")
	case o.has("routing_key") && !o.has("exchange"):
		d.errf(o.keys["routing_key"], o.path, "routing_key goes with exchange")
	}
}

func checkBody(d *decoder, o *obj, b *Body) {
	if o.has("template") == o.has("file") {
		d.errf(o.n, o.path, "needs exactly one of template and file")
	}
}

func checkTIDPlace(d *decoder, o *obj, p *TIDPlace) {
	if o.has("header") == o.has("json") {
		d.errf(o.n, o.path, "needs exactly one of header and json")
	}
	for _, k := range []string{"header", "json"} {
		if v, ok := o.vals[k]; ok && v.Value == "" {
			d.errf(v, join(o.path, k), "must not be empty")
		}
	}
}

func checkTemplate(v string) error {
	if _, err := loadgen.ParseTemplate(v, 1); err != nil {
		return err
	}
	return nil
}

func checkRegexp(v string) error {
	if _, err := regexp.Compile(v); err != nil {
		return fmt.Errorf("bad regexp: %w", err)
	}
	return nil
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:8081", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be a number in 1–65535", v)
	}
	return nil
}

// checkBrokerName checks a queue or exchange name of the user's worker: any
// name the broker takes (bench's naming rules are the runtime's, not theirs).
func checkBrokerName(v string) error {
	switch {
	case v == "":
		return errors.New("must not be empty")
	case len(v) > 255:
		return fmt.Errorf("%d bytes: the broker takes at most 255", len(v))
	case strings.HasPrefix(v, "amq."):
		return fmt.Errorf("%q: names starting amq. are the broker's", v)
	}
	return nil
}

// checkOwnWorker applies the rules between the own-worker keys and the rest,
// once every key is decoded.
func (d *decoder) checkOwnWorker(top *obj, s *Scenario) {
	workers, job := top.vals["workers"], top.vals["job"]
	if !s.OwnWorker() {
		for _, k := range []string{"env", "ready"} {
			if kn := keyNode(workers, k); kn != nil {
				d.errf(kn, "workers", "%s applies to workers.command (your own worker) only", k)
			}
		}
		for _, k := range []string{"publish", "body", "tid"} {
			if kn := keyNode(job, k); kn != nil {
				d.errf(kn, "job", "%s applies to workers.command (your own worker) only", k)
			}
		}
		for _, k := range []string{"completion", "dependencies"} {
			if top.has(k) {
				d.errf(top.keys[k], "", "%s applies to workers.command (your own worker) only", k)
			}
		}
		return
	}
	for _, k := range simulatedJobKeys {
		if kn := keyNode(job, k); kn != nil {
			d.errf(kn, "job", "%s is the simulated job's; with workers.command your worker does the work", k)
		}
	}
	if top.has("dependency") {
		d.errf(top.keys["dependency"], "", "dependency is the simulated dependency's; put your worker's own services under dependencies")
	}
	if s.Job.Body.File != "" {
		path := s.Job.Body.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dirOf(d.file), path)
		}
		if _, err := loadgen.ReadBodyFile(path, s.Job.TID.JSON); err != nil {
			d.errf(mappingValue(mappingValue(job, "body"), "file"), "job.body.file", "%v", err)
		}
	}
	if s.Job.TID.JSON != "" && s.Job.Body == (Body{}) {
		d.errf(keyNode(job, "tid"), "job.tid", "json needs a JSON body: set job.body")
	}
	d.checkDependencies(top, s)
}

// checkDependencies keeps dependency names and variables unique.
func (d *decoder) checkDependencies(top *obj, s *Scenario) {
	names, envs := map[string]bool{}, map[string]bool{}
	list := top.vals["dependencies"]
	for i, dep := range s.Dependencies {
		var item *yaml.Node
		if list != nil && i < len(list.Content) {
			item = list.Content[i]
		}
		at := "dependencies." + strconv.Itoa(i)
		if names[dep.Name] {
			d.errf(mappingValue(item, "name"), at, "name %s is taken by an earlier dependency", dep.Name)
		}
		names[dep.Name] = true
		_, inEnv := s.Workers.Env[dep.Env]
		switch {
		case envs[dep.Env]:
			d.errf(mappingValue(item, "env"), at, "env %s is taken by an earlier dependency", dep.Env)
		case harnessEnv(dep.Env):
			d.errf(mappingValue(item, "env"), at, "env %s is set by bench", dep.Env)
		case inEnv:
			d.errf(mappingValue(item, "env"), at, "env %s is set by workers.env too", dep.Env)
		}
		envs[dep.Env] = true
	}
}

// keyNode returns the key node of key in mapping n, nil when absent.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := deref(n.Content[j]); k != nil && k.Value == key {
			return k
		}
	}
	return nil
}

// DependencyNames returns the names of the dependencies, in file order.
func (s *Scenario) DependencyNames() []string {
	out := make([]string, len(s.Dependencies))
	for i, d := range s.Dependencies {
		out[i] = d.Name
	}
	return out
}
