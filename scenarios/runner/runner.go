// Package runner is `bench run`: for each variant of a scenario it brings up
// the environment (broker, proxies, simulated dependency), spawns the worker
// processes, generates the load, applies the fault timeline, accounts for every
// job, drains, and evaluates the gates. See docs/architecture.md.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/buildinfo"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/live"
	"github.com/benchmq/bench/scenarios"
)

// Options are the run's settings from the command line.
type Options struct {
	AMQPURL string // --amqp-url; empty: $AMQP_URL, the scenario's broker.url, then a managed node
	OutDir  string // where result.json and the per-variant files go (required)

	// WorkerArgv starts one worker process; the runner appends its flags.
	// Empty: this executable with "worker".
	WorkerArgv []string

	// Order is the order in which the variants run, as indices into the
	// scenario's variants (see RunOrder); nil: the scenario's order. The
	// result lists the variants in the scenario's order either way.
	Order []int

	Progress io.Writer // progress lines; nil: none
	TTY      bool      // Progress is a terminal: one live line instead of a line a second
	Logger   *slog.Logger

	// ResetQueues takes over queues of the scenario's names that an external
	// broker already holds with messages or consumers: they are deleted
	// before the variant and after it. Without it such a queue stops the run
	// (a *ForeignError, an ErrEnvironment).
	ResetQueues bool
	// Namespace prefixes the app, task, event and job.emit names so that
	// every queue and exchange is the run's own: NamespaceAuto for a run id,
	// or a name (scenarios.CheckNamespace); "" for none.
	Namespace string
	// MaxRate searches each variant's highest rate that meets the SLO (as
	// the scenario's search key does), over scenarios.DefaultSearchRange
	// when the scenario has no search key.
	MaxRate bool
	// OnSnapshot, if set, receives each variant's live state about once a
	// second (and its last state at the end): e.g. to serve it to Prometheus.
	// It must not block.
	OnSnapshot func(live.Snapshot)
	// Cluster, if set, is the managed cluster a scenario with broker.nodes of
	// 2 or more runs on, instead of one the run starts and closes: it is
	// left running, made whole again after each variant (tests share one).
	Cluster *broker.Cluster
}

// NamespaceAuto asks for a namespace made of a run id.
const NamespaceAuto = "auto"

// Runner runs one scenario.
type Runner struct {
	opts       Options
	sc         *scenarios.Scenario
	log        *slog.Logger
	workerArgv []string
	seed       int64
	namespace  string

	mu            sync.Mutex
	brokerVersion string
	brokerKind    string
	cluster       *broker.Cluster // started by Run for its variants (cluster.go)
}

// New checks the options.
func New(sc *scenarios.Scenario, opts Options) (*Runner, error) {
	var errs []error
	if sc == nil {
		errs = append(errs, errors.New("runner: no scenario"))
	}
	if opts.OutDir == "" {
		errs = append(errs, errors.New("runner: OutDir is required"))
	}
	if opts.Order != nil && sc != nil {
		if err := checkOrder(opts.Order, sc); err != nil {
			errs = append(errs, err)
		}
	}
	if sc != nil {
		errs = append(errs, CheckOptions(sc, opts))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Runner{opts: opts, sc: sc, log: opts.Logger, workerArgv: opts.WorkerArgv}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(r.workerArgv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the bench executable: %w", err)
		}
		r.workerArgv = []string{exe, "worker"}
	}
	switch opts.Namespace {
	case "":
	case NamespaceAuto:
		r.namespace = "run" + newRunID()[:8]
	default:
		if err := scenarios.CheckNamespace(opts.Namespace); err != nil {
			return nil, fmt.Errorf("runner: namespace %w", err)
		}
		r.namespace = opts.Namespace
	}
	r.seed = sc.Seed
	if !sc.SeedSet {
		var b [8]byte
		_, _ = rand.Read(b[:])
		r.seed = int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	}
	return r, nil
}

func (r *Runner) setBroker(version, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.brokerVersion, r.brokerKind = version, kind
}

// Run runs every variant, one after another, and returns the result. The
// result holds what was measured even when err is not nil (an environment
// failure, errors.Is(err, ErrEnvironment), or ctx cancelled).
func (r *Runner) Run(ctx context.Context) (*report.Result, error) {
	sc := r.sc
	res := &report.Result{
		SchemaVersion: report.SchemaVersion,
		Scenario: report.Scenario{Name: sc.Name, File: sc.File, SHA256: sc.SHA256, Seed: r.seed, Description: sc.Description,
			Overrides: sc.Overrides, Effective: string(sc.Effective), EffectiveSHA256: sc.EffectiveSHA256, Namespace: r.namespace},
		Env:       envInfo(),
		Variants:  []report.Variant{},
		StartedAt: time.Now().UTC().Format(time.RFC3339),
	}
	variants, err := sc.Variants()
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(r.opts.OutDir, 0o755); err != nil {
		return res, fmt.Errorf("%w: create output dir: %w", ErrEnvironment, err)
	}
	order := r.opts.Order
	if order == nil {
		order = RunOrder(len(variants), 1)[0]
	}
	done := make([]*report.Variant, len(variants))
	defer r.closeCluster()
	var runErr error
	for n, i := range order {
		v := variants[i]
		if ctx.Err() != nil {
			break
		}
		vsc, err := v.Scenario.Namespaced(r.namespace)
		if err != nil {
			return res, err
		}
		dir := filepath.Join(r.opts.OutDir, safeName(v.Name))
		r.log.Info("variant starting", "variant", v.Name, "index", i+1, "of", len(variants))
		var rv report.Variant
		if _, search := r.searchSpec(); search {
			rv, err = r.searchVariant(ctx, i, v, dir)
		} else {
			vr := &variantRun{r: r, index: i, v: v, sc: vsc, dir: dir, runID: newRunID(), log: r.log.With("variant", v.Name)}
			rv, err = vr.run(ctx)
		}
		if err != nil {
			rv.Error = err.Error()
		}
		if err == nil || rv.Ledger.Published > 0 {
			evalGates(v.Scenario, &rv)
			if rv.Search == nil {
				judgeSLO(v.Scenario, &rv)
			} // else the verdict is the step's, at its rate
		} // else the variant never ran: its gates would judge nothing
		rv.Passed = rv.Passed && rv.Error == "" && rv.Aborted == nil
		done[i] = &rv
		r.printSummary(n, len(variants), &rv)
		if err != nil {
			runErr = err
			break
		}
	}
	for _, rv := range done {
		if rv != nil {
			res.Variants = append(res.Variants, *rv)
		}
	}
	r.mu.Lock()
	res.Env.BrokerVersion, res.Env.BrokerKind = r.brokerVersion, r.brokerKind
	r.mu.Unlock()
	res.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	res.SLO = sc.SLO
	res.Capacity = report.PlanCapacity(res)
	PrintCapacity(r.opts.Progress, res.Capacity)
	printSearches(r.opts.Progress, res)
	res.Passed = runErr == nil && len(res.Variants) == len(variants)
	for _, v := range res.Variants {
		res.Passed = res.Passed && v.Passed
	}
	if runErr != nil {
		res.Error = runErr.Error()
		if errors.Is(runErr, context.Canceled) {
			res.Interrupted = true
		}
	}
	return res, runErr
}

// checkOrder accepts a permutation of the scenario's variant indices.
func checkOrder(order []int, sc *scenarios.Scenario) error {
	variants, err := sc.Variants()
	if err != nil {
		return err
	}
	seen := make([]bool, len(variants))
	for _, i := range order {
		if i < 0 || i >= len(variants) || seen[i] {
			return fmt.Errorf("runner: order %v is not a permutation of the %d variants", order, len(variants))
		}
		seen[i] = true
	}
	if len(order) != len(variants) {
		return fmt.Errorf("runner: order %v is not a permutation of the %d variants", order, len(variants))
	}
	return nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// safeName makes a variant name usable as a directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '=', r == ',':
			return r
		}
		return '_'
	}, s)
}

func envInfo() report.Env {
	host, _ := os.Hostname()
	bi := buildinfo.Read()
	e := report.Env{GoVersion: runtime.Version(), Hostname: host, CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		GitSHA: bi.Revision, BenchVersion: bi.String()}
	if e.GitSHA == "" {
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			e.GitSHA = strings.TrimSpace(string(out))
		}
	}
	return e
}
