package broker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ManagedConfig configures a managed node. The zero value is ready to use.
type ManagedConfig struct {
	// Server is the rabbitmq-server command; "" means rabbitmq-server on PATH.
	Server string
	// Ctl is the rabbitmqctl command; "" means rabbitmqctl on PATH.
	Ctl string
	// BaseDir holds the node's fresh directory; "" means os.TempDir().
	BaseDir string
	// User owns the node's directory when this process runs as root, because
	// Debian's rabbitmq-server wrapper then switches to that user; "" means
	// "rabbitmq". Ignored when not running as root.
	User string
	// BootTimeout bounds one boot, until the node answers an AMQP handshake;
	// 0 means 60s. ctx may end it sooner.
	BootTimeout time.Duration
	// StopTimeout bounds a graceful stop in Close before the node is killed;
	// 0 means 30s.
	StopTimeout time.Duration
	// Detached makes the node outlive this process (bench broker up): it
	// runs in its own session and is not reaped by this process. Close still
	// stops it.
	Detached bool
	// ErlArgs are extra arguments to the node's Erlang VM
	// (RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS), e.g. "+S 1:1" for one scheduler;
	// "" means the server's defaults.
	ErlArgs string
	// Management enables the management plugin on a free port (its HTTP API
	// is what Topology uses to list and close connections). Off by default:
	// it costs boot time and CPU for its statistics. Cluster nodes always
	// have it.
	Management bool
}

func (c *ManagedConfig) setDefaults() {
	if c.Server == "" {
		c.Server = "rabbitmq-server"
	}
	if c.Ctl == "" {
		c.Ctl = "rabbitmqctl"
	}
	if c.BaseDir == "" {
		c.BaseDir = os.TempDir()
	}
	if c.User == "" {
		c.User = "rabbitmq"
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 60 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 30 * time.Second
	}
}

func (c *ManagedConfig) validate() error {
	var errs []error
	if c.BootTimeout < 0 {
		errs = append(errs, fmt.Errorf("boot timeout %v is negative", c.BootTimeout))
	}
	if c.StopTimeout < 0 {
		errs = append(errs, fmt.Errorf("stop timeout %v is negative", c.StopTimeout))
	}
	return errors.Join(errs...)
}

// NodeInfo identifies a managed node; it is what bench broker up saves so that
// bench broker down can find the node again.
type NodeInfo struct {
	Node     string `json:"node"`
	URL      string `json:"url"`
	Dir      string `json:"dir"`
	AMQPPort int    `json:"amqp_port"`
	DistPort int    `json:"dist_port"`
	// Host is the address the node listens on; "" means 127.0.0.1.
	Host string `json:"host,omitempty"`
	// ManagementPort is the management plugin's HTTP port; 0 when the
	// plugin is off.
	ManagementPort int `json:"management_port,omitempty"`
	// Netns is the network namespace the node runs in; "" for the host's.
	Netns string `json:"netns,omitempty"`
	// Longnames: the node name's host part is an address, so the node and
	// rabbitmqctl use long names.
	Longnames bool `json:"longnames,omitempty"`
}

func (i NodeInfo) host() string {
	if i.Host == "" {
		return "127.0.0.1"
	}
	return i.Host
}

// nodeSpec says where and how a node runs. The zero value is the single
// managed node: a fresh name, 127.0.0.1, free ports, guest/guest. A cluster
// fills it in per node.
type nodeSpec struct {
	name      string // Erlang node name; "" means bench-<random>@localhost
	host      string // listen address; "" means 127.0.0.1
	amqpPort  int    // 0: a free port
	distPort  int    // 0: a free port
	mgmtPort  int    // 0: a free port, when management is on
	netns     string // network namespace to run in; "" for the host's
	longnames bool
	user      string // the default user RabbitMQ creates; "" means guest
	pass      string
	extraConf string // more rabbitmq.conf lines
}

// Managed is a private rabbitmq-server node in a fresh directory on free
// ports. It implements Broker and Controller.
type Managed struct {
	cfg    ManagedConfig
	server string // resolved commands
	ctl    string
	info   NodeInfo

	closing   chan struct{} // closed when Close begins: aborts a boot wait
	closeOnce sync.Once
	closeErr  error

	mu   sync.Mutex // serialises lifecycle operations
	proc *process   // the node started by this value; nil when stopped or attached
}

// process is one rabbitmq-server invocation.
type process struct {
	// Owned mode: this process is the parent and a goroutine reaps it.
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
	// Detached mode: the wrapper runs in its own session.
	wrapperPID int
}

func (p *process) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	return !pidAlive(p.wrapperPID)
}

// StartManaged starts a private node and returns once it accepts AMQP
// connections. The caller must Close it; on error nothing is left behind.
// Failures to provide the node wrap ErrUnavailable.
func StartManaged(ctx context.Context, cfg ManagedConfig) (*Managed, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure managed broker: %w", err)
	}
	server, ctl, err := resolveCommands(cfg)
	if err != nil {
		return nil, err
	}
	return startNode(ctx, cfg, server, ctl, nodeSpec{})
}

// startNode creates a node from spec and boots it; see StartManaged.
func startNode(ctx context.Context, cfg ManagedConfig, server, ctl string, spec nodeSpec) (*Managed, error) {
	// Free ports are only free until someone takes them: retry a lost race.
	const attempts = 3
	for i := 1; ; i++ {
		m, err := newManaged(cfg, server, ctl, spec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		err = m.Start(ctx)
		if err == nil {
			return m, nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.StopTimeout)
		cerr := m.Close(cctx)
		cancel()
		if i < attempts && strings.Contains(err.Error(), "eaddrinuse") && ctx.Err() == nil {
			continue
		}
		return nil, fmt.Errorf("%w: start managed node: %w", ErrUnavailable, errors.Join(err, cerr))
	}
}

// resolveCommands finds the server and rabbitmqctl commands of cfg.
func resolveCommands(cfg ManagedConfig) (server, ctl string, err error) {
	server, err = exec.LookPath(cfg.Server)
	if err != nil {
		return "", "", fmt.Errorf("%w: find %s (install RabbitMQ, e.g. apt-get install -y rabbitmq-server): %w", ErrUnavailable, cfg.Server, err)
	}
	ctl, err = exec.LookPath(cfg.Ctl)
	if err != nil {
		return "", "", fmt.Errorf("%w: find %s: %w", ErrUnavailable, cfg.Ctl, err)
	}
	return server, ctl, nil
}

// Attach returns a handle on a node started earlier, perhaps by another
// process (bench broker down). Closing it stops the node and removes its
// directory.
func Attach(info NodeInfo, cfg ManagedConfig) (*Managed, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure managed broker: %w", err)
	}
	ctl, err := exec.LookPath(cfg.Ctl)
	if err != nil {
		return nil, fmt.Errorf("%w: find %s: %w", ErrUnavailable, cfg.Ctl, err)
	}
	server, err := exec.LookPath(cfg.Server)
	if err != nil {
		server = cfg.Server // only Start needs it
	}
	if info.Node == "" || info.Dir == "" || info.AMQPPort == 0 {
		return nil, fmt.Errorf("attach managed node: incomplete node info")
	}
	return &Managed{cfg: cfg, server: server, ctl: ctl, info: info, closing: make(chan struct{})}, nil
}

func newManaged(cfg ManagedConfig, server, ctl string, spec nodeSpec) (_ *Managed, err error) {
	if spec.name == "" {
		suffix, err := randomHex(4)
		if err != nil {
			return nil, err
		}
		spec.name = "bench-" + suffix + "@localhost"
	}
	dir, err := os.MkdirTemp(cfg.BaseDir, "bench-rabbitmq-")
	if err != nil {
		return nil, fmt.Errorf("create node directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	management := cfg.Management || spec.mgmtPort != 0
	if spec.amqpPort == 0 || spec.distPort == 0 || (management && spec.mgmtPort == 0) {
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		spec.amqpPort = cmp.Or(spec.amqpPort, ports[0])
		spec.distPort = cmp.Or(spec.distPort, ports[1])
		if management {
			spec.mgmtPort = cmp.Or(spec.mgmtPort, ports[2])
		}
	}
	user, pass := cmp.Or(spec.user, "guest"), cmp.Or(spec.pass, "guest")
	info := NodeInfo{
		Node:           spec.name,
		URL:            (&url.URL{Scheme: "amqp", User: url.UserPassword(user, pass), Host: net.JoinHostPort(cmp.Or(spec.host, "127.0.0.1"), strconv.Itoa(spec.amqpPort)), Path: "/"}).String(),
		Dir:            dir,
		AMQPPort:       spec.amqpPort,
		DistPort:       spec.distPort,
		Host:           spec.host,
		ManagementPort: spec.mgmtPort,
		Netns:          spec.netns,
		Longnames:      spec.longnames,
	}
	files := map[string]string{
		"rabbitmq.conf":   nodeConf(info, spec),
		"enabled_plugins": "[].\n", // no plugins: no management listener to collide
	}
	if management {
		files["enabled_plugins"] = "[rabbitmq_management].\n"
	}
	if spec.netns != "" {
		// The host's rabbitmq-env.conf may pin epmd and the distribution
		// to 127.0.0.1 (Debian's does); a node in a namespace is its own host.
		files["rabbitmq-env.conf"] = "# bench: this node ignores the host's rabbitmq-env.conf\n"
	}
	for name, content := range files {
		// 0600: rabbitmq.conf may hold the default user's password.
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("write node %s: %w", name, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, cfg.User); err != nil {
			return nil, err
		}
	}
	return &Managed{cfg: cfg, server: server, ctl: ctl, info: info, closing: make(chan struct{})}, nil
}

// nodeConf is the node's rabbitmq.conf.
func nodeConf(info NodeInfo, spec nodeSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listeners.tcp.1 = %s\n", net.JoinHostPort(info.host(), strconv.Itoa(info.AMQPPort)))
	fmt.Fprintf(&b, "vm_memory_high_watermark.relative = %s\n", defaultWatermark)
	if spec.user != "" {
		// RabbitMQ creates this user instead of guest on the node's first
		// boot (guest may only log in over loopback).
		fmt.Fprintf(&b, "default_user = %s\ndefault_pass = %s\ndefault_user_tags.administrator = true\n", spec.user, spec.pass)
	}
	if info.ManagementPort != 0 {
		fmt.Fprintf(&b, "management.tcp.ip = %s\nmanagement.tcp.port = %d\n", info.host(), info.ManagementPort)
		// Queue counts and memory as fresh as the runner samples them (250 ms),
		// not the default 5 s.
		b.WriteString("collect_statistics_interval = 250\n")
	}
	b.WriteString(spec.extraConf)
	return b.String()
}

// defaultWatermark is RabbitMQ's default vm_memory_high_watermark; Unblock
// restores it.
const defaultWatermark = "0.4"

// URL implements Broker.
func (m *Managed) URL() string { return m.info.URL }

// Kind implements Broker.
func (m *Managed) Kind() string { return KindManaged }

// NodeName implements Controller.
func (m *Managed) NodeName() string { return m.info.Node }

// Info describes the node, for saving and Attach.
func (m *Managed) Info() NodeInfo { return m.info }

// ManagementURL is the base URL of the node's management HTTP API, without
// credentials (they are the AMQP URL's), or "" when the plugin is off.
func (m *Managed) ManagementURL() string {
	if m.info.ManagementPort == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(m.info.host(), strconv.Itoa(m.info.ManagementPort))
}

// Version implements Broker.
func (m *Managed) Version(ctx context.Context) (string, error) {
	return ServerVersion(ctx, m.info.URL)
}

func (m *Managed) env() []string {
	d := m.info.Dir
	env := append(os.Environ(),
		"RABBITMQ_NODENAME="+m.info.Node,
		"RABBITMQ_NODE_IP_ADDRESS="+m.info.host(),
		"RABBITMQ_NODE_PORT="+strconv.Itoa(m.info.AMQPPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(m.info.DistPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(d, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(d, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(d, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(d, "rabbitmq.conf"),
		"RABBITMQ_PID_FILE="+m.pidFile(),
	)
	if m.cfg.ErlArgs != "" {
		env = append(env, "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+m.cfg.ErlArgs)
	}
	if m.info.Longnames {
		env = append(env, "RABBITMQ_USE_LONGNAME=true")
	}
	if m.info.Netns != "" {
		env = append(env, "RABBITMQ_CONF_ENV_FILE="+filepath.Join(d, "rabbitmq-env.conf"))
	}
	return env
}

// serverArgv is the command that runs the server, inside the node's network
// namespace if it has one. ip netns exec execs the server, so the pid (and
// process group) stay the wrapper's.
func (m *Managed) serverArgv() []string {
	if m.info.Netns != "" {
		return []string{"ip", "netns", "exec", m.info.Netns, m.server}
	}
	return []string{m.server}
}

func (m *Managed) pidFile() string { return filepath.Join(m.info.Dir, "rabbitmq.pid") }
func (m *Managed) outFile() string { return filepath.Join(m.info.Dir, "node.out") }

// Start implements Controller. Starting a running node is a no-op.
func (m *Managed) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.start(ctx)
}

func (m *Managed) start(ctx context.Context) error {
	select {
	case <-m.closing:
		return fmt.Errorf("start node %s: broker closed", m.info.Node)
	default:
	}
	if m.running() {
		return nil
	}
	p, err := m.spawn()
	if err != nil {
		return fmt.Errorf("start node %s: %w", m.info.Node, err)
	}
	m.proc = p
	bctx, cancel := context.WithTimeout(ctx, m.cfg.BootTimeout)
	defer cancel()
	if err := m.waitBoot(bctx, p); err != nil {
		kerr := m.kill(context.WithoutCancel(ctx))
		return errors.Join(fmt.Errorf("boot node %s: %w%s", m.info.Node, err, m.logTail()), kerr)
	}
	return nil
}

func (m *Managed) spawn() (*process, error) {
	out, err := os.OpenFile(m.outFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open node output: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	if m.cfg.Detached {
		// A shell backgrounds the server and exits: the node belongs to
		// no process of ours and outlives this one.
		cmd := exec.Command("/bin/sh", append([]string{"-c", `out=$1; shift; "$@" </dev/null >>"$out" 2>&1 & echo $!`, "sh", m.outFile()}, m.serverArgv()...)...)
		cmd.Env = m.env()
		cmd.Dir = m.info.Dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", m.server, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("read server pid %q: %w", b, err)
		}
		return &process{wrapperPID: pid}, nil
	}
	argv := m.serverArgv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = m.env()
	cmd.Dir = m.info.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C meant for bench must not kill the
	// node before Close has stopped it cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", m.server, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitBoot returns when the node answers an AMQP handshake.
func (m *Managed) waitBoot(ctx context.Context, p *process) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.exited() {
			if p.err != nil {
				return fmt.Errorf("server exited: %w", p.err)
			}
			return errors.New("server exited")
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := Dial(dctx, m.info.URL)
		cancel()
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for AMQP on port %d: %w", m.info.AMQPPort, ctx.Err())
		case <-m.closing:
			return errors.New("broker closed while booting")
		case <-tick.C:
		}
	}
}

// running reports whether a node is up (or booting) in this directory.
func (m *Managed) running() bool {
	if m.proc != nil && !m.proc.exited() {
		return true
	}
	return m.beamPID() != 0
}

// PID returns the pid of the node's Erlang VM (the process whose CPU time is the
// broker's), or 0 when none runs.
func (m *Managed) PID() int { return m.beamPID() }

// beamPID is the pid of the node's Erlang VM, or 0 when none runs.
func (m *Managed) beamPID() int {
	if b, err := os.ReadFile(m.pidFile()); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pidAlive(pid) {
			return pid
		}
	}
	// Early in a boot there is no pid file yet.
	return findBeam("RABBITMQ_NODENAME=" + m.info.Node)
}

// Stop implements Controller. Stopping a stopped node is a no-op.
func (m *Managed) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stop(ctx)
}

func (m *Managed) stop(ctx context.Context) error {
	if !m.running() {
		m.proc = nil
		return nil
	}
	pid := m.beamPID()
	if err := m.rabbitmqctl(ctx, "stop"); err != nil {
		return err
	}
	if err := m.waitDown(ctx, pid); err != nil {
		return fmt.Errorf("stop node %s: %w", m.info.Node, err)
	}
	return nil
}

// Restart implements Controller.
func (m *Managed) Restart(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stop(ctx); err != nil {
		return err
	}
	return m.start(ctx)
}

// Kill implements Controller.
func (m *Managed) Kill(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running() {
		return fmt.Errorf("kill node %s: not running", m.info.Node)
	}
	return m.kill(ctx)
}

// kill SIGKILLs the VM and waits until it and its wrapper are gone. Before
// the VM exists it kills the wrapper's process group (owned mode) instead.
func (m *Managed) kill(ctx context.Context) error {
	pid := m.beamPID()
	if pid != 0 {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill node %s (pid %d): %w", m.info.Node, pid, err)
		}
	} else if p := m.proc; p != nil && p.cmd != nil && !p.exited() {
		if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill node %s wrapper: %w", m.info.Node, err)
		}
	}
	if err := m.waitDown(ctx, pid); err != nil {
		return fmt.Errorf("kill node %s: %w", m.info.Node, err)
	}
	// A VM may have come up under a wrapper that is gone now.
	if late := m.beamPID(); late != 0 {
		if err := syscall.Kill(late, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill node %s (pid %d): %w", m.info.Node, late, err)
		}
		return m.waitDown(ctx, late)
	}
	return nil
}

// killNode SIGKILLs the VM of the node named name, found by its environment,
// and waits until it is gone; none running is fine. It is for a node whose
// directory (and pid file) is not known.
func killNode(ctx context.Context, name string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pid := findBeam("RABBITMQ_NODENAME=" + name)
		if pid == 0 {
			return nil
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill node %s (pid %d): %w", name, pid, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill node %s: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitDown waits until the VM pid and this value's own process are gone.
func (m *Managed) waitDown(ctx context.Context, pid int) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		procDone := m.proc == nil || m.proc.exited()
		if procDone && (pid == 0 || !pidAlive(pid)) {
			m.proc = nil
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node to exit: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Block implements Controller.
func (m *Managed) Block(ctx context.Context) error {
	return m.rabbitmqctl(ctx, "set_vm_memory_high_watermark", "0")
}

// Unblock implements Controller.
func (m *Managed) Unblock(ctx context.Context) error {
	return m.rabbitmqctl(ctx, "set_vm_memory_high_watermark", defaultWatermark)
}

// Eval evaluates an Erlang expression on the node (rabbitmqctl eval) and
// returns what it printed: for tests that reach inside the broker, e.g. to
// crash a queue's process.
func (m *Managed) Eval(ctx context.Context, expr string) (string, error) {
	return m.ctlOutput(ctx, "eval", expr)
}

func (m *Managed) rabbitmqctl(ctx context.Context, args ...string) error {
	_, err := m.ctlOutput(ctx, args...)
	return err
}

// ctlOutput runs rabbitmqctl against the node and returns its output.
func (m *Managed) ctlOutput(ctx context.Context, args ...string) (string, error) {
	return runCtl(ctx, m.ctl, m.info, args...)
}

// runCtl runs a RabbitMQ CLI tool (rabbitmqctl, rabbitmq-queues) against the
// node described by info.
func runCtl(ctx context.Context, tool string, info NodeInfo, args ...string) (string, error) {
	argv := []string{"-n", info.Node}
	if info.Longnames {
		argv = append(argv, "--longnames")
	}
	cmd := exec.CommandContext(ctx, tool, append(argv, args...)...)
	// Killing the wrapper may leave its children holding the pipe.
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s on %s: %w: %s", filepath.Base(tool), strings.Join(args, " "), info.Node, err, tail(string(out), 400))
	}
	return string(out), nil
}

// Close implements Broker: it stops the node (gracefully, else by SIGKILL)
// and removes its directory. Concurrent and repeated calls return the first
// call's result.
func (m *Managed) Close(ctx context.Context) error {
	return m.close(ctx, true)
}

// close is Close; graceful false kills the node at once, for a caller that
// throws its data away anyway.
func (m *Managed) close(ctx context.Context, graceful bool) error {
	m.closeOnce.Do(func() {
		close(m.closing)
		m.mu.Lock()
		defer m.mu.Unlock()
		var errs []error
		if !graceful && m.running() {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			if err := m.kill(kctx); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
		if m.running() {
			sctx, cancel := context.WithTimeout(ctx, m.cfg.StopTimeout)
			err := m.stop(sctx)
			cancel()
			if err != nil {
				// A graceful stop failed: make sure nothing survives.
				kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
				if kerr := m.kill(kctx); kerr != nil {
					errs = append(errs, err, kerr)
				}
				cancel()
			}
		}
		if err := os.RemoveAll(m.info.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove node directory: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			m.closeErr = fmt.Errorf("close managed node %s: %w", m.info.Node, err)
		}
	})
	return m.closeErr
}

// logTail is the end of the node's output and log, for boot errors.
func (m *Managed) logTail() string {
	var b strings.Builder
	for _, f := range []string{m.outFile(), filepath.Join(m.info.Dir, "log", m.info.Node+".log")} {
		if data, err := os.ReadFile(f); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), tail(string(data), 1500))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// freePorts returns n distinct ports nobody listens on right now.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func chownTree(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("look up user %q for the node directory: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("parse ids of user %q: %w", name, err)
	}
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, uid, gid); err != nil {
			return fmt.Errorf("hand node directory to user %q: %w", name, err)
		}
		return nil
	})
}
