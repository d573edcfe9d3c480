package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/benchmq/bench/internal/agent"
	"github.com/benchmq/bench/internal/buildinfo"
	"github.com/benchmq/bench/internal/redact"
)

// AgentConfig configures `bench agent`: a long-lived process on any host
// that joins runs through the broker (docs/agents.md).
type AgentConfig struct {
	// URL is the broker the agent joins through; its workers and generator
	// use it too. It never appears in logs or messages.
	URL string
	// Name identifies the agent to runners (placement names it); "" is the
	// host name.
	Name string
	// Labels are matched by placement's labels.
	Labels map[string]string
	// Dir holds the worker processes' configs and logs; "" is a directory
	// named after the agent in the system's temporary directory.
	Dir string
	// WorkerArgv starts one worker process ("" this executable's worker command).
	WorkerArgv []string
	// Heartbeat is how often the agent tells its runner it is alive while it
	// serves a run; 0 is 1 s.
	Heartbeat time.Duration
	// RunnerTimeout is how long a part outlives the last word of its runner
	// (a runner that died): 0 is 15 s.
	RunnerTimeout time.Duration
	Logger        *slog.Logger
}

func (c *AgentConfig) setDefaults() error {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("name the agent: %w", err)
		}
		c.Name = h
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(os.TempDir(), "bench-agent-"+c.Name)
	}
	if len(c.WorkerArgv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the bench executable: %w", err)
		}
		c.WorkerArgv = []string{exe, "worker"}
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.RunnerTimeout == 0 {
		c.RunnerTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

func (c *AgentConfig) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("agent: the broker URL is required"))
	}
	if strings.ContainsAny(c.Name, " #*") || c.Name == "" {
		errs = append(errs, fmt.Errorf("agent: name %q must not be empty nor hold spaces, # or *", c.Name))
	}
	if c.Heartbeat < 0 || c.RunnerTimeout < c.Heartbeat {
		errs = append(errs, errors.New("agent: the runner timeout must be longer than the heartbeat"))
	}
	return errors.Join(errs...)
}

// RunAgent serves runs until ctx ends: it joins the control exchange, says
// hello to runners that look for agents, runs the part a runner hands it and
// releases it when told (or when its runner falls silent). A lost broker
// connection ends the part and is redialled with backoff.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("agent: create %s: %w", cfg.Dir, err)
	}
	s := &agentServer{cfg: cfg, log: cfg.Logger.With("agent", cfg.Name)}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		bus, err := agent.Dial(ctx, cfg.URL, agent.KeyAll, agent.AgentKey(cfg.Name))
		if err != nil {
			s.log.Warn("join the broker", "err", redact.Error(err, cfg.URL), "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		s.log.Info("joined", "exchange", agent.Exchange, "labels", cfg.Labels)
		s.serve(ctx, bus)
		_ = bus.Close()
	}
	return nil
}

// agentServer is the agent's state: at most one part at a time.
type agentServer struct {
	cfg AgentConfig
	log *slog.Logger

	mu   sync.Mutex
	part *agentPart
}

func (s *agentServer) current() *agentPart {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.part
}

// serve handles the control messages of one broker connection. When it
// returns, the part it ran is released.
func (s *agentServer) serve(ctx context.Context, bus *agent.Bus) {
	var wg sync.WaitGroup
	defer func() {
		if p := s.current(); p != nil {
			p.release(context.WithoutCancel(ctx))
		}
		wg.Wait()
	}()
	for {
		m, ok, err := bus.Recv(ctx)
		if !ok {
			return
		}
		if err != nil {
			s.log.Warn("control message", "err", err)
			continue
		}
		recvAt := time.Now().UnixNano()
		switch m.Type {
		case agent.TypeDiscover:
			var d agent.Discover
			if err := m.Decode(&d); err != nil || d.ReplyTo == "" {
				continue
			}
			busy := ""
			if p := s.current(); p != nil {
				busy = p.run
			}
			host, _ := os.Hostname()
			s.reply(ctx, bus, d.ReplyTo, agent.TypeHello, m.Run, agent.Hello{Name: s.cfg.Name, Host: host, Labels: s.cfg.Labels,
				PID: os.Getpid(), Version: buildinfo.Read().String(), Busy: busy})
		case agent.TypePing:
			var ping agent.Ping
			p := s.current()
			if p == nil || p.run != m.Run || m.Decode(&ping) != nil {
				continue
			}
			p.heard()
			p.reply(ctx, agent.TypePong, agent.Pong{T0: ping.T0, T1: recvAt, T2: time.Now().UnixNano()})
		case agent.TypeAssign:
			s.assign(ctx, bus, m)
		default:
			p := s.current()
			if p == nil || p.run != m.Run {
				continue // a message of a run this agent no longer serves
			}
			p.heard()
			wg.Go(func() { s.handle(ctx, p, m) })
		}
	}
}

// handle runs one message of the current part's runner.
func (s *agentServer) handle(ctx context.Context, p *agentPart, m agent.Msg) {
	switch m.Type {
	case agent.TypeStart:
		var st agent.Start
		if err := m.Decode(&st); err == nil {
			p.startGenerator(ctx, time.Unix(0, st.At))
		}
	case agent.TypeFault:
		var f agent.Fault
		if err := m.Decode(&f); err == nil {
			err := p.fault(ctx, f)
			done := agent.FaultDone{ID: f.ID}
			if err != nil {
				done.Error = err.Error()
			}
			p.reply(ctx, agent.TypeFaultDone, done)
		}
	case agent.TypeRelease:
		p.release(ctx)
	}
}

func (s *agentServer) reply(ctx context.Context, bus *agent.Bus, to, typ, run string, body any) {
	m, err := agent.NewMsg(typ, run, s.cfg.Name, body)
	if err == nil {
		err = bus.SendTo(ctx, to, m)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("reply", "type", typ, "err", err)
	}
}

// assign starts the part a runner hands over, unless one runs already.
func (s *agentServer) assign(ctx context.Context, bus *agent.Bus, m agent.Msg) {
	var a agent.Assign
	if err := m.Decode(&a); err != nil || a.ReplyTo == "" {
		s.log.Warn("assign", "err", err)
		return
	}
	s.mu.Lock()
	if s.part != nil {
		busy := s.part.run
		s.mu.Unlock()
		s.reply(ctx, bus, a.ReplyTo, agent.TypeAssigned, m.Run, agent.Assigned{Error: fmt.Sprintf("agent %s is busy with run %s", s.cfg.Name, busy)})
		return
	}
	p := newAgentPart(s, bus, m.Run, a.ReplyTo)
	s.part = p
	s.mu.Unlock()
	s.log.Info("assigned", "run", m.Run, "workers", a.Workers != nil, "generator", a.Generator != nil)
	if err := p.start(ctx, a); err != nil {
		s.log.Warn("start part", "run", m.Run, "err", redact.Error(err, s.cfg.URL))
		p.reply(ctx, agent.TypeAssigned, agent.Assigned{Error: redact.Error(err, s.cfg.URL).Error()})
		p.release(ctx)
		return
	}
	p.reply(ctx, agent.TypeAssigned, agent.Assigned{})
}

// done forgets p once it is released.
func (s *agentServer) done(p *agentPart) {
	s.mu.Lock()
	if s.part == p {
		s.part = nil
	}
	s.mu.Unlock()
}
