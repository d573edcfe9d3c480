package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// procs supervises the worker processes of one variant (`bench worker`, or
// the scenario's workers.command). Each is the leader of its own process
// group, and every signal goes to the group: a worker that is a tree of
// processes (npm start, a shell script) is killed, stopped and paused whole.
// Faults kill, stop and pause them; a killed or stopped process is respawned
// with the same index. A process that exits on its own is an environment
// failure.
type procs struct {
	spec   procSpec
	logDir string
	rng    *rand.Rand

	mu      sync.Mutex
	live    []*proc // by worker index
	paused  map[*proc]bool
	died    chan error // unexpected exits
	ready   chan int   // the index of a process whose output matched spec.ready (first match per start)
	stopped bool
	wg      sync.WaitGroup
}

// procSpec says how to start worker process id.
type procSpec struct {
	argv []string // program and leading args, e.g. [bench worker]
	// args are appended for process id (bench worker's flags); nil: none.
	args func(id int) []string
	// env is added to this process's environment for process id: the broker
	// URL goes here, never in a file.
	env   func(id int) []string
	dir   string         // working directory; "" the runner's
	name  string         // how errors name the worker, e.g. "bench worker" or the command
	ready *regexp.Regexp // a line of output that means ready; nil: not watched
	// orphanKill: the process gets SIGKILL when its parent dies (an agent's
	// workers die with the agent, as on a host that goes down).
	orphanKill bool
}

type proc struct {
	id       int
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	expected bool // exit caused by the harness (guarded by procs.mu)
	log      *os.File
}

func newProcs(spec procSpec, logDir string, seed int64) *procs {
	return &procs{
		spec: spec, logDir: logDir,
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x6265_6e63_68)),
		died:   make(chan error, 16),
		ready:  make(chan int, maxProcesses),
		paused: map[*proc]bool{},
	}
}

// maxProcesses bounds workers.processes (the scenario's own limit).
const maxProcesses = 256

// simSpec starts `bench worker` processes with the runner's flags.
func simSpec(argv []string, config, telem string, env []string) procSpec {
	return procSpec{
		argv: argv,
		name: "bench worker",
		args: func(id int) []string {
			return []string{"--config", config, "--worker", strconv.Itoa(id), "--telemetry", telem}
		},
		env: func(int) []string { return append([]string{"BENCH_WORKER=1"}, env...) },
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
	args := append([]string{}, p.spec.argv[1:]...)
	if p.spec.args != nil {
		args = append(args, p.spec.args(id)...)
	}
	cmd := exec.Command(p.spec.argv[0], args...)
	cmd.Dir = p.spec.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.spec.ready != nil {
		w := &lineWatch{re: p.spec.ready, matched: func() {
			select {
			case p.ready <- id:
			default: // a respawn after the start: nobody waits for it
			}
		}}
		cmd.Stdout = io.MultiWriter(logf, w)
		cmd.Stderr = cmd.Stdout
		// A descendant that escaped the group may hold the pipe open.
		cmd.WaitDelay = 5 * time.Second
	}
	cmd.Env = os.Environ()
	if p.spec.env != nil {
		cmd.Env = append(cmd.Env, p.spec.env(id)...)
	}
	// Own process group: a Ctrl-C on the terminal reaches the runner, which
	// stops the workers itself, in order; and signals reach the whole tree.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if p.spec.orphanKill {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start worker %d (%s): %w", id, p.spec.name, err)
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
			case p.died <- fmt.Errorf("worker %d (%s, pid %d) exited: %v (see %s)", id, p.spec.name, cmd.Process.Pid, pr.err, logf.Name()):
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
	if err := pr.signal(sig); err != nil {
		return fmt.Errorf("signal worker %d: %w", pr.id, err)
	}
	select {
	case <-pr.done:
	case <-ctx.Done():
		_ = pr.signal(syscall.SIGKILL)
		<-pr.done
	}
	if sig == syscall.SIGKILL {
		// The leader is gone; what it left of its group dies with it, as in
		// a container's OOM kill.
		_ = pr.signal(syscall.SIGKILL)
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
	if err := pr.signal(syscall.SIGSTOP); err != nil {
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
		if err := pr.signal(syscall.SIGCONT); err != nil {
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
			_ = pr.signal(syscall.SIGCONT)
		}
		_ = pr.signal(syscall.SIGTERM)
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
					_ = q.signal(syscall.SIGKILL)
				}
			}
			<-pr.done
		}
	}
	// Whatever a leader left behind in its group goes too.
	for _, pr := range live {
		if pr != nil {
			_ = pr.signal(syscall.SIGKILL)
		}
	}
	p.wg.Wait()
}

// signal sends sig to the process's group; a group already gone is no error.
func (pr *proc) signal(sig syscall.Signal) error {
	err := syscall.Kill(-pr.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// lineWatch scans output for a line matching re and calls matched once.
type lineWatch struct {
	re      *regexp.Regexp
	matched func()
	buf     []byte
	done    bool
}

// maxLine bounds a partial line held while it waits for its newline.
const maxLine = 64 << 10

func (w *lineWatch) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := w.buf[:i]
		w.buf = w.buf[i+1:]
		if w.re.Match(line) {
			w.done, w.buf = true, nil
			w.matched()
			return len(p), nil
		}
	}
	if len(w.buf) > maxLine {
		w.buf = w.buf[len(w.buf)-maxLine:]
	}
	w.buf = append([]byte(nil), w.buf...)
	return len(p), nil
}
