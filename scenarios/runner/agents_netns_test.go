package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/report"
	"github.com/benchmq/bench/report/live"
	"github.com/benchmq/bench/scenarios"
)

// testAgent is `bench agent` in this test binary: its workers are this
// binary too.
func testAgent(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: agent NAME URL")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = RunAgent(ctx, AgentConfig{Name: args[0], URL: args[1], Labels: map[string]string{"role": "test"},
		WorkerArgv: []string{exe, "worker"}, Dir: os.Getenv("BENCH_AGENT_DIR")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

// nsHost is one "host" of the test: a network namespace whose only link is
// a veth to the host, where a forwarder to the broker listens.
type nsHost struct {
	ns, veth           string
	hostAddr, nodeAddr string
	fwd                net.Listener
	agent              *exec.Cmd
	agentDone          chan struct{}
}

// netnsHosts creates n namespaces, each with a veth to the host on its own
// /30 and nothing else: an agent there reaches the broker only through the
// forwarder on the host's side of its veth. It skips the test where
// namespaces cannot be made.
func netnsHosts(t *testing.T, n int, upstream string) []*nsHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("agents on several hosts: creating network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("agents on several hosts: no ip command (apt-get install -y iproute2)")
	}
	subnet := freeSubnet(t)
	id := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	var hosts []*nsHost
	t.Cleanup(func() {
		for _, h := range hosts {
			h.stopAgent()
			if h.fwd != nil {
				h.fwd.Close()
			}
			_ = exec.Command("ip", "netns", "del", h.ns).Run()
			_ = exec.Command("ip", "link", "del", h.veth).Run()
		}
	})
	for i := range n {
		h := &nsHost{ns: fmt.Sprintf("bench-agt-%s-%d", id, i+1), veth: fmt.Sprintf("ba%sh%d", id, i+1),
			hostAddr: fmt.Sprintf("%s.%d", subnet, 4*i+1), nodeAddr: fmt.Sprintf("%s.%d", subnet, 4*i+2)}
		hosts = append(hosts, h)
		for _, args := range [][]string{
			{"netns", "add", h.ns},
			{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
			{"addr", "add", h.hostAddr + "/30", "dev", h.veth},
			{"link", "set", h.veth, "up"},
			{"-n", h.ns, "addr", "add", h.nodeAddr + "/30", "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				if i == 0 && args[0] == "netns" {
					t.Skipf("agents on several hosts: cannot create a network namespace here: %v: %s", err, out)
				}
				t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		ln, err := net.Listen("tcp", h.hostAddr+":0")
		if err != nil {
			t.Fatal(err)
		}
		h.fwd = ln
		go forward(ln, upstream)
	}
	return hosts
}

// freeSubnet picks a 10.23x.y.0/24 that no route of this host uses.
func freeSubnet(t *testing.T) string {
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Skipf("agents on several hosts: read routes: %v", err)
	}
	for y := 17; y < 250; y++ {
		s := fmt.Sprintf("10.237.%d", y)
		if !strings.Contains(string(out), s+".") {
			return s
		}
	}
	t.Skip("agents on several hosts: no free subnet in 10.237.0.0/16")
	return ""
}

// forward accepts connections on ln and pipes each to upstream.
func forward(ln net.Listener, upstream string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() { _, _ = io.Copy(u, c); u.Close(); close(done) }()
			_, _ = io.Copy(c, u)
			c.Close()
			<-done
		})
	}
}

// startAgent runs an agent in the namespace, joined through its forwarder.
func (h *nsHost) startAgent(t *testing.T, name string, brokerURL *url.URL) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	u := *brokerURL
	u.Host = h.fwd.Addr().String()
	cmd := exec.Command("ip", "netns", "exec", h.ns, exe, "agent", name, u.String())
	cmd.Env = append(os.Environ(), "BENCH_WORKER=1", "BENCH_AGENT_DIR="+t.TempDir())
	log, err := os.Create(t.TempDir() + "/agent.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.agent, h.agentDone = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(h.agentDone) }()
}

// stopAgent SIGTERMs the agent (SIGKILL after 20 s) and waits for it.
func (h *nsHost) stopAgent() {
	if h.agent == nil {
		return
	}
	_ = syscall.Kill(-h.agent.Process.Pid, syscall.SIGTERM)
	select {
	case <-h.agentDone:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-h.agent.Process.Pid, syscall.SIGKILL)
		<-h.agentDone
	}
	h.agent = nil
}

// killAgent SIGKILLs the agent alone, as a host that goes down: its workers
// die with it.
func (h *nsHost) killAgent() {
	_ = h.agent.Process.Kill()
	<-h.agentDone
	h.agent = nil
}

// agentsScenario is a spike or steady load on 3 worker processes, placed on
// the named agents or on this host.
func agentsScenario(name, task, load string, agents []string) string {
	s := `
name: ` + name + `
seed: 11
app: bench
task: ` + task + `
workers: {processes: 3, concurrency: 8, prefetch: 20, timeout: 2s}
job: {work: 1ms, fail_rate: 0.02}
load:
  - ` + load + `
drain_timeout: 60s
gates: [lost == 0]
`
	if len(agents) > 0 {
		s += fmt.Sprintf("placement: {workers: {names: [%[1]s]}, generators: {names: [%[1]s]}, timeout: 30s}\n", strings.Join(agents, ", "))
	}
	return s
}

// Three agents, each in a network namespace that reaches only the broker,
// run a spike and a steady load: one ledger, nothing lost, and the spike's
// ledger equals a single-host run's.
func TestAgentsOnThreeHosts(t *testing.T) {
	brokerURL := brokertest.URL(t)
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	hosts := netnsHosts(t, 3, u.Host)
	var names []string
	for i, h := range hosts {
		name := fmt.Sprintf("%s-%d", brokertest.Name(t, "agt"), i+1)
		names = append(names, name)
		h.startAgent(t, name, u)
	}

	spikeTask := "bench.job." + brokertest.Name(t, "spike")
	single := runScenario(t, agentsScenario("single", spikeTask, "spike: {jobs: 3000, size: 1KiB}", nil))
	multi := runScenario(t, agentsScenario("agents", spikeTask, "spike: {jobs: 3000, size: 1KiB}", names))
	checkLedgers(t, "spike", single.Ledger, multi.Ledger, 3000)
	checkAgents(t, multi, names, 3000)

	steady := runScenario(t, agentsScenario("agents-steady", "bench.job."+brokertest.Name(t, "steady"), "steady: {rate: 300/s, for: 3s, size: 1KiB}", names))
	checkLedgers(t, "steady", steady.Ledger, steady.Ledger, 900)
	checkAgents(t, steady, names, 900)
	if e := steady.LatencyMS.EndToEnd; e.Count != 900 || e.P50 <= 0 {
		t.Errorf("steady: end-to-end latency %+v, want one per job", e)
	}
}

// checkLedgers compares a ledger with a single-host run's: the same jobs,
// each finished once, none lost.
func checkLedgers(t *testing.T, what string, single, multi report.Ledger, jobs int64) {
	t.Helper()
	for _, l := range []report.Ledger{single, multi} {
		if l.Published != jobs || l.Confirmed != jobs || l.Finished != jobs || l.Lost != 0 || l.Duplicates != 0 || l.Unconfirmed != 0 || l.TIDMismatches != 0 {
			t.Errorf("%s: ledger %+v, want %d jobs each finished once", what, l, jobs)
		}
	}
	if single.Succeeded+single.Recovered != multi.Succeeded+multi.Recovered {
		t.Errorf("%s: single host finished %d+%d, three hosts %d+%d", what, single.Succeeded, single.Recovered, multi.Succeeded, multi.Recovered)
	}
}

// checkAgents checks the per-host account: every agent ran a worker and a
// shard, the shards cover the jobs, and the clocks (one kernel here) agree
// within the measured uncertainty.
func checkAgents(t *testing.T, v report.Variant, names []string, jobs int64) {
	t.Helper()
	if len(v.Agents) != len(names) {
		t.Fatalf("%d agents in the result, want %d: %+v", len(v.Agents), len(names), v.Agents)
	}
	var sum int64
	for _, a := range v.Agents {
		g := a.Generator
		if len(a.Workers) != 1 || g == nil || a.Died {
			t.Errorf("agent %+v: want one worker and a shard, alive", a)
			continue
		}
		sum += g.Jobs
		if g.Published != g.Jobs || g.Finished != g.Jobs || g.Lost != 0 {
			t.Errorf("agent %s shard %+v: every job published and finished", a.Name, g)
		}
		if off := a.ClockOffsetMS; off > a.ClockUncertaintyMS+1 || off < -a.ClockUncertaintyMS-1 {
			t.Errorf("agent %s: clock offset %.3f ms ± %.3f on the same kernel", a.Name, off, a.ClockUncertaintyMS)
		}
	}
	if sum != jobs {
		t.Errorf("shards hold %d jobs, want %d", sum, jobs)
	}
}

// An agent that dies mid-run (SIGKILL: its workers die with it) is reported
// with when it was last heard; its shard stops where it was, the broker
// requeues what its workers held, and the other agents finish the run.
func TestAgentDiesMidRun(t *testing.T) {
	brokerURL := brokertest.URL(t)
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	hosts := netnsHosts(t, 3, u.Host)
	var names []string
	for i, h := range hosts {
		name := fmt.Sprintf("%s-%d", brokertest.Name(t, "die"), i+1)
		names = append(names, name)
		h.startAgent(t, name, u)
	}
	yaml := strings.Replace(agentsScenario("agent-dies", "bench.job."+brokertest.Name(t, "dies"), "steady: {rate: 150/s, for: 5s, size: 1KiB}", names),
		"drain_timeout: 60s", "drain_timeout: 10s", 1)
	var once sync.Once
	killed := make(chan struct{})
	v := runScenarioWith(t, yaml, Options{OnSnapshot: func(s live.Snapshot) {
		if s.Result.Ledger.Published >= 200 {
			once.Do(func() { go func() { hosts[1].killAgent(); close(killed) }() })
		}
	}})
	<-killed
	var dead, alive int
	for _, a := range v.Agents {
		if !a.Died {
			alive++
			if g := a.Generator; g == nil || g.Published != g.Jobs {
				t.Errorf("live agent %s: shard %+v not fully published", a.Name, g)
			}
			continue
		}
		dead++
		if a.Name != names[1] || a.DiedAtS == nil || *a.DiedAtS <= 0 {
			t.Errorf("dead agent %+v: want %s with the time it was last heard", a, names[1])
		}
		if g := a.Generator; g == nil || g.Published >= g.Jobs || g.Published == 0 {
			t.Errorf("dead agent's shard %+v: want it stopped part way", g)
		}
	}
	if dead != 1 || alive != 2 {
		t.Fatalf("%d dead and %d live agents, want 1 and 2: %+v", dead, alive, v.Agents)
	}
	l := v.Ledger
	// What the dead agent had not relayed (at most flushEvery of its
	// workers' outcomes) is the only thing that may be missing.
	if l.Lost > 10 || l.Duplicates > 10 {
		t.Errorf("ledger %+v: more lost than a relay window holds", l)
	}
	if !slicesContain(v.Warnings, "agent "+names[1]) {
		t.Errorf("warnings %q do not name the dead agent", v.Warnings)
	}
}

func slicesContain(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A run whose agents do not come fails as an environment failure naming
// the ones missing.
func TestPlacementTimeoutNamesMissingAgents(t *testing.T) {
	url := brokertest.URL(t)
	missing := brokertest.Name(t, "nobody")
	sc, err := scenarios.Parse("test.yaml", []byte(`
name: no-agents
app: bench
task: bench.job.`+brokertest.Name(t, "none")+`
load: [{spike: {jobs: 10}}]
placement: {workers: {names: [`+missing+`]}, timeout: 1500ms}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(sc, Options{AMQPURL: url, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = r.Run(ctx)
	if !errors.Is(err, ErrEnvironment) || !strings.Contains(err.Error(), "missing: "+missing) {
		t.Fatalf("err = %v, want an environment failure naming %s", err, missing)
	}
}

// Generators on agents, workers on the runner's host: the workers'
// outcomes can overtake the relay of their job's publish and must wait for
// it, not count as jobs never published.
func TestGeneratorAgentsWithLocalWorkers(t *testing.T) {
	url := brokertest.URL(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var names []string
	for i := range 2 {
		name := fmt.Sprintf("%s-%d", brokertest.Name(t, "gen"), i+1)
		names = append(names, name)
		dir := t.TempDir()
		wg.Go(func() {
			if err := RunAgent(ctx, AgentConfig{URL: url, Name: name, Dir: dir, WorkerArgv: []string{exe, "worker"}}); err != nil {
				t.Error(err)
			}
		})
	}
	v := runScenario(t, `
name: gen-agents
app: bench
task: bench.job.`+brokertest.Name(t, "genlocal")+`
workers: {processes: 2, concurrency: 16, prefetch: 100}
job: {work: 100us, fatal_rate: 0.2}
load:
  - spike: {jobs: 2000, size: 256B}
  - steady: {rate: 400/s, for: 1s}
placement: {generators: {names: [`+strings.Join(names, ", ")+`]}, timeout: 30s}
drain_timeout: 30s
gates: [lost == 0]
`)
	l := v.Ledger
	if l.Published != 2400 || l.Finished != 2400 || l.Lost != 0 || l.Duplicates != 0 {
		t.Fatalf("ledger %+v (warnings %q), want 2400 jobs each finished once", l, v.Warnings)
	}
	// A permanent failure is recovered (the worker reports it) and
	// dead-lettered (the runner sees it in .dead): both records, each job once.
	if l.Recovered == 0 || l.DeadLettered != l.Recovered || slicesContain(v.Warnings, "never published") {
		t.Fatalf("recovered %d, dead-lettered %d, warnings %q: every dead letter must be one of the run's jobs", l.Recovered, l.DeadLettered, v.Warnings)
	}
	if len(v.Agents) != 2 || v.Agents[0].Generator == nil || len(v.Agents[0].Workers) != 0 {
		t.Fatalf("agents %+v: want two generator-only agents", v.Agents)
	}
	if v.Throughput.PublishPerS <= 0 || v.LatencyMS.PublishConfirm.Count != 2400 {
		t.Fatalf("publish rate %g, publish-confirm latency %+v: the shards' results were not merged", v.Throughput.PublishPerS, v.LatencyMS.PublishConfirm)
	}
}
