package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benchmq/bench/chaos/depsim"
	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/loadgen"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/internal/simworker"
	"github.com/benchmq/bench/internal/telemetry"
	"github.com/benchmq/bench/report"
)

// flushEvery is how often an agent sends the events it collected: the
// relay's added latency, and what a dying agent can take with it.
const flushEvery = 20 * time.Millisecond

// agentPart is what one agent runs for one run: worker processes reporting
// to a telemetry listener on the agent's loopback, a generator shard, or
// both; their events go to the runner in batches.
type agentPart struct {
	s       *agentServer
	bus     *agent.Bus
	run     string
	replyTo string
	log     *slog.Logger
	dir     string

	enc      agent.Encoder
	flushMu  sync.Mutex
	batch    uint64
	lastWord atomic.Int64 // Unix ns of the runner's last message

	tel   *telemetry.Server
	procs *procs
	dep   *depsim.Server
	gen   *loadgen.Generator

	ctx         context.Context // the part's life; cancelled by release
	cancel      context.CancelFunc
	bg          sync.WaitGroup
	genOnce     sync.Once
	releaseOnce sync.Once
	released    chan struct{}
	pauseMu     sync.Mutex
	paused      map[int64]func(context.Context) error
}

func newAgentPart(s *agentServer, bus *agent.Bus, run, replyTo string) *agentPart {
	ctx, cancel := context.WithCancel(context.Background())
	p := &agentPart{s: s, bus: bus, run: run, replyTo: replyTo, log: s.log.With("run", run),
		dir: filepath.Join(s.cfg.Dir, run), ctx: ctx, cancel: cancel,
		released: make(chan struct{}), paused: map[int64]func(context.Context) error{}}
	p.heard()
	return p
}

func (p *agentPart) heard() { p.lastWord.Store(time.Now().UnixNano()) }

// reply sends a message of the part to its runner.
func (p *agentPart) reply(ctx context.Context, typ string, body any) {
	m, err := agent.NewMsg(typ, p.run, p.s.cfg.Name, body)
	if err == nil {
		err = p.bus.SendTo(ctx, p.replyTo, m)
	}
	if err != nil && ctx.Err() == nil {
		p.log.Warn("send to runner", "type", typ, "err", err)
	}
}

// flush sends the events collected so far, in order.
func (p *agentPart) flush(ctx context.Context) {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	data := p.enc.Take()
	if data == nil {
		return
	}
	p.batch++
	p.reply(ctx, agent.TypeEvents, agent.Events{Batch: p.batch, Data: data})
}

// start brings up the part's workers and prepares its generator; the
// generator waits for the runner's start.
func (p *agentPart) start(ctx context.Context, a agent.Assign) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", p.dir, err)
	}
	p.bg.Go(p.background)
	if a.Workers != nil {
		if err := p.startWorkers(ctx, a.Workers); err != nil {
			return err
		}
	}
	if g := a.Generator; g != nil {
		gen, err := loadgen.New(loadgen.Config{
			URL: p.s.cfg.URL, Exchange: g.Exchange, RoutingKey: g.RoutingKey, Phases: g.Phases,
			RunID: g.RunID, FirstSeq: g.FirstSeq, Logger: p.log,
			OnPublished: p.enc.Published,
			OnConfirmed: func(seq int64, ack bool, _ time.Duration) { p.enc.Confirmed(seq, ack) },
		})
		if err != nil {
			return fmt.Errorf("configure load generator: %w", err)
		}
		p.gen = gen
	}
	return nil
}

// startWorkers starts `bench worker` processes that report to a telemetry
// listener on the agent's loopback; the simulated dependency, if the job
// calls one, runs beside them.
func (p *agentPart) startWorkers(ctx context.Context, w *agent.Workers) error {
	var wc simworker.Config
	if err := json.Unmarshal(w.Config, &wc); err != nil {
		return fmt.Errorf("decode worker config: %w", err)
	}
	if d := w.Dependency; d != nil {
		dep, err := depsim.Start(ctx, depsim.Config{Latency: d.Latency, Jitter: d.Jitter, ErrorRate: d.ErrorRate, Seed: d.Seed})
		if err != nil {
			return err
		}
		p.dep = dep
		wc.DependencyURL = dep.URL()
	}
	tel, err := telemetry.Listen("127.0.0.1:0", func(h telemetry.Hello) telemetry.Conn {
		p.enc.Hello(h)
		return &relayConn{enc: &p.enc, worker: h.Worker}
	}, func(err error) { p.log.Warn("telemetry", "err", err) })
	if err != nil {
		return err
	}
	p.tel = tel
	cfgPath := filepath.Join(p.dir, "worker.json")
	if err := simworker.WriteConfig(cfgPath, wc); err != nil {
		return err
	}
	spec := simSpec(p.s.cfg.WorkerArgv, cfgPath, tel.Addr(), []string{"AMQP_URL=" + p.s.cfg.URL})
	// The worker flag carries the run-wide index; the log file the local one.
	args := spec.args
	spec.args = func(id int) []string {
		a := args(id)
		for i := range len(a) - 1 {
			if a[i] == "--worker" {
				a[i+1] = strconv.Itoa(w.Indices[id])
			}
		}
		return a
	}
	spec.orphanKill = true
	p.procs = newProcs(spec, p.dir, wc.Seed+int64(w.Indices[0]))
	if err := p.procs.startAll(len(w.Indices)); err != nil {
		return err
	}
	p.bg.Go(p.watchExits)
	return nil
}

// background flushes events and sends heartbeats until the part is
// released; a runner silent for RunnerTimeout releases it.
func (p *agentPart) background() {
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	beat := time.NewTicker(p.s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-flush.C:
			p.flush(p.ctx)
		case <-beat.C:
			p.reply(p.ctx, agent.TypeHeartbeat, nil)
			if silent := time.Since(time.Unix(0, p.lastWord.Load())); silent > p.s.cfg.RunnerTimeout {
				p.log.Warn("the runner fell silent: releasing the part", "silent", silent.Round(time.Second))
				// Not in p.bg: release waits for it. It ends within the
				// workers' grace, and the server's own release of the
				// part (serve's defer) waits for it through p.released.
				go p.release(context.Background())
				return
			}
		}
	}
}

// watchExits tells the runner about a worker process that exited on its own.
func (p *agentPart) watchExits() {
	select {
	case err := <-p.procs.died:
		p.reply(p.ctx, agent.TypeExited, agent.Exited{Error: err.Error()})
	case <-p.ctx.Done():
	}
}

// startGenerator runs the shard from at (the agent's clock) and reports its
// result after every event it caused.
func (p *agentPart) startGenerator(ctx context.Context, at time.Time) {
	if p.gen == nil {
		return
	}
	p.genOnce.Do(func() {
		p.bg.Go(func() {
			res, err := p.gen.Run(p.ctx, at)
			done := agent.GenDone{Stats: res.Stats, FirstSend: unixOrZero(res.FirstSend), LastSend: unixOrZero(res.LastSend),
				PublishedPerSecond: res.PublishedPerSecond}
			for _, d := range res.PhaseStarts {
				done.PhaseStarts = append(done.PhaseStarts, int64(d))
			}
			if res.ConfirmLatency != nil {
				done.ConfirmLatency, _ = report.EncodeHistogram(res.ConfirmLatency)
			}
			if err != nil {
				done.Error = redact.Error(err, p.s.cfg.URL).Error()
			}
			p.flush(context.WithoutCancel(p.ctx))
			p.reply(context.WithoutCancel(p.ctx), agent.TypeGenDone, done)
		})
	})
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fault acts on one of the part's worker processes.
func (p *agentPart) fault(ctx context.Context, f agent.Fault) error {
	if p.procs == nil {
		return errors.New("this agent runs no workers")
	}
	switch f.Action {
	case agent.FaultKill:
		return p.procs.Kill(ctx)
	case agent.FaultStop:
		return p.procs.Stop(ctx)
	case agent.FaultPause:
		resume, err := p.procs.Pause(ctx)
		if err != nil {
			return err
		}
		p.pauseMu.Lock()
		p.paused[f.ID] = resume
		p.pauseMu.Unlock()
		return nil
	case agent.FaultResume:
		p.pauseMu.Lock()
		resume := p.paused[f.ID]
		delete(p.paused, f.ID)
		p.pauseMu.Unlock()
		if resume == nil {
			return fmt.Errorf("no pause %d to resume", f.ID)
		}
		return resume(ctx)
	}
	return fmt.Errorf("unknown fault action %q", f.Action)
}

// release stops the part in order: the generator, the workers (SIGTERM,
// SIGKILL after 30 s) while the telemetry listener still reads them, the
// listener, the dependency; then the last events and "released". It runs
// once; later callers wait for it.
func (p *agentPart) release(ctx context.Context) {
	p.releaseOnce.Do(func() {
		defer close(p.released)
		ctx := context.WithoutCancel(ctx)
		p.cancel()
		if p.procs != nil {
			p.procs.stopAll(30 * time.Second)
		}
		if p.tel != nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = p.tel.Close(cctx)
			cancel()
		}
		if p.dep != nil {
			_ = p.dep.Close()
		}
		p.bg.Wait()
		p.flush(ctx)
		p.flushMu.Lock()
		last := p.batch
		p.flushMu.Unlock()
		p.reply(ctx, agent.TypeReleased, agent.Released{LastBatch: last})
		p.s.done(p)
		p.log.Info("released")
	})
	<-p.released
}

// relayConn encodes one worker's telemetry for the runner.
type relayConn struct {
	enc    *agent.Encoder
	worker int
}

func (c *relayConn) Ready()                      { c.enc.Ready(c.worker) }
func (c *relayConn) Outcome(o telemetry.Outcome) { c.enc.Outcome(c.worker, o) }
func (c *relayConn) Redelivered(seq int64)       { c.enc.Redelivered(c.worker, seq) }
func (c *relayConn) Stats(s telemetry.Stats)     { c.enc.Stats(c.worker, s) }
func (c *relayConn) Bye()                        { c.enc.Bye(c.worker) }
