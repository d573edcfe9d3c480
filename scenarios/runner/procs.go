package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// procs supervises the `bench worker` processes of one variant. Faults kill,
// stop and pause them; a killed or stopped process is respawned with the same
// index. A process that exits on its own is an environment failure.
type procs struct {
	argv   []string // program and leading args, e.g. [bench worker]
	env    []string // added to the environment: the broker URL, never in a file
	config string   // worker config file
	telem  string   // telemetry address
	logDir string
	rng    *rand.Rand

	mu      sync.Mutex
	live    []*proc // by worker index
	paused  map[*proc]bool
	died    chan error // unexpected exits
	stopped bool
	wg      sync.WaitGroup
}

type proc struct {
	id       int
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	expected bool // exit caused by the harness (guarded by procs.mu)
	log      *os.File
}

func newProcs(argv []string, config, telem, logDir string, seed int64) *procs {
	return &procs{
		argv: argv, config: config, telem: telem, logDir: logDir,
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x6265_6e63_68)),
		died:   make(chan error, 16),
		paused: map[*proc]bool{},
	}
}

// startAll starts n worker processes.
func (p *procs) startAll(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = make([]*proc, n)
	for i := range n {
		if err := p.startLocked(i); err != nil {
			return err
		}
	}
	return nil
}

func (p *procs) startLocked(id int) error {
	if p.stopped {
		return errors.New("start worker: the variant is stopping")
	}
	logf, err := os.OpenFile(filepath.Join(p.logDir, fmt.Sprintf("worker-%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start worker %d: %w", id, err)
	}
	args := append(append([]string{}, p.argv[1:]...), "--config", p.config, "--worker", fmt.Sprint(id), "--telemetry", p.telem)
	cmd := exec.Command(p.argv[0], args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), "BENCH_WORKER=1"), p.env...)
	// Own process group: a Ctrl-C on the terminal reaches the runner, which
	// stops the workers itself, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start worker %d: %w", id, err)
	}
	pr := &proc{id: id, cmd: cmd, done: make(chan struct{}), log: logf}
	p.live[id] = pr
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		pr.err = cmd.Wait()
		logf.Close()
		p.mu.Lock()
		expected := pr.expected || p.stopped
		p.mu.Unlock()
		close(pr.done)
		if !expected {
			select {
			case p.died <- fmt.Errorf("worker %d (pid %d) exited: %v (see %s)", id, cmd.Process.Pid, pr.err, logf.Name()):
			default:
			}
		}
	}()
	return nil
}

// pids returns the process IDs of the live workers.
func (p *procs) pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.live))
	for _, pr := range p.live {
		if pr != nil {
			out = append(out, pr.cmd.Process.Pid)
		}
	}
	return out
}

// pick chooses a live, running worker.
func (p *procs) pickLocked() (*proc, error) {
	var cands []*proc
	for _, pr := range p.live {
		if pr == nil || p.paused[pr] {
			continue
		}
		select {
		case <-pr.done:
		default:
			cands = append(cands, pr)
		}
	}
	if len(cands) == 0 {
		return nil, errors.New("no running worker process")
	}
	return cands[p.rng.IntN(len(cands))], nil
}

// signalAndRespawn sends sig to one worker, waits for it to exit and starts a
// new one in its place.
func (p *procs) signalAndRespawn(ctx context.Context, sig syscall.Signal) error {
	p.mu.Lock()
	pr, err := p.pickLocked()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	pr.expected = true
	p.mu.Unlock()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal worker %d: %w", pr.id, err)
	}
	select {
	case <-pr.done:
	case <-ctx.Done():
		_ = pr.cmd.Process.Kill()
		<-pr.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked(pr.id)
}

// Kill SIGKILLs one worker process and respawns it.
func (p *procs) Kill(ctx context.Context) error { return p.signalAndRespawn(ctx, syscall.SIGKILL) }

// Stop SIGTERMs one worker process (a graceful shutdown) and respawns it.
func (p *procs) Stop(ctx context.Context) error { return p.signalAndRespawn(ctx, syscall.SIGTERM) }

// Pause SIGSTOPs one worker process and returns the function that resumes it.
func (p *procs) Pause(ctx context.Context) (func(context.Context) error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, err := p.pickLocked()
	if err != nil {
		return nil, err
	}
	if err := pr.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pause worker %d: %w", pr.id, err)
	}
	p.paused[pr] = true
	return func(context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.paused[pr] {
			return nil
		}
		delete(p.paused, pr)
		if err := pr.cmd.Process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("resume worker %d: %w", pr.id, err)
		}
		return nil
	}, nil
}

// stopAll asks every worker to shut down gracefully and SIGKILLs those still
// running after grace. It waits for every process to be reaped.
func (p *procs) stopAll(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	live := append([]*proc(nil), p.live...)
	paused := p.paused
	p.paused = map[*proc]bool{}
	p.mu.Unlock()
	for _, pr := range live {
		if pr == nil {
			continue
		}
		if paused[pr] {
			_ = pr.cmd.Process.Signal(syscall.SIGCONT)
		}
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, pr := range live {
		if pr == nil {
			continue
		}
		select {
		case <-pr.done:
		case <-deadline.C:
			for _, q := range live {
				if q != nil {
					_ = q.cmd.Process.Kill()
				}
			}
			<-pr.done
		}
	}
	p.wg.Wait()
}
