package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/redact"
)

const brokerAbout = `  up    start a private rabbitmq-server node that outlives this command and
        print its URL; with --nodes N, a cluster of N nodes, and every node's
        URL; if one is already up, print its URL(s)
  down  stop that node or cluster and remove its data (and a cluster's
        network namespaces)

The state is kept in $XDG_STATE_HOME/bench/broker.json (default: the user
cache directory), so that down finds what up started. See "bench broker up
--help" for the flags.`

var brokerCLI = cli{
	name:  "broker",
	usage: "up|down [flags]",
	about: brokerAbout,
	examples: []string{
		"bench broker up",
		"export AMQP_URL=$(bench broker up | head -1)",
		"bench broker up --nodes 3",
		"bench broker down",
	},
	exits: "0 done (down: also when nothing is up)\n2 bad input: flags, an unknown subcommand, a size other than the one up\n3 the node or cluster could not be started or stopped",
}

func cmdBroker(args []string, s stdio) int {
	return runBroker(args, s.out, s.err)
}

func runBroker(args []string, stdout, stderr io.Writer) int {
	s := stdio{out: stdout, err: stderr}
	if len(args) == 0 {
		return brokerCLI.fail(s, "missing subcommand up or down")
	}
	switch args[0] {
	case "-h", "--help", "help":
		brokerCLI.help(stdout, nil)
		return exitOK
	case "up":
		return brokerUp(args[1:], stdout, stderr)
	case "down":
		return brokerDown(args[1:], stdout, stderr)
	}
	return brokerCLI.fail(s, "unknown subcommand %q", args[0])
}

// brokerFlags parses a subcommand's flags; code >= 0 means return it.
func brokerFlags(name, summary string, args []string, stdout, stderr io.Writer, extra func(*pflag.FlagSet)) (state string, code int) {
	s := stdio{out: stdout, err: stderr}
	c := cli{name: "broker " + name, usage: "[flags]", about: summary + "\n\n" + brokerAbout, examples: brokerCLI.examples, exits: brokerCLI.exits}
	fs := c.flags()
	statePath := fs.String("state-file", "", "where the node's state is kept (default $XDG_STATE_HOME/bench/broker.json, else the user cache directory)")
	if extra != nil {
		extra(fs)
	}
	if code, done := c.parse(fs, args, s); done {
		return "", code
	}
	if !c.args(fs, 0, 0, s) {
		return "", exitInput
	}
	if *statePath != "" {
		return *statePath, -1
	}
	p, err := defaultStatePath()
	if err != nil {
		fmt.Fprintf(stderr, "bench broker %s: %v\n", name, err)
		return "", exitEnv
	}
	return p, -1
}

func defaultStatePath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find a directory for the broker state: %w", err)
		}
		dir = d
	}
	return filepath.Join(dir, "bench", "broker.json"), nil
}

// brokerState is what up saves for down: a node (the fields of NodeInfo, as
// before clusters existed) or a cluster.
type brokerState struct {
	broker.NodeInfo
	Cluster *broker.ClusterInfo `json:"cluster,omitempty"`
}

func brokerUp(args []string, stdout, stderr io.Writer) int {
	var boot time.Duration
	var nodes int
	var network string
	statePath, code := brokerFlags("up", "Start a private RabbitMQ node, or cluster, and print its URL(s).", args, stdout, stderr, func(fs *pflag.FlagSet) {
		fs.DurationVar(&boot, "boot-timeout", 60*time.Second, "how long a node may take to boot")
		fs.IntVar(&nodes, "nodes", 1, "how many nodes; 2 or more make a cluster")
		fs.StringVar(&network, "network", broker.NetworkAuto, "a cluster's network: auto (netns when run as root with iproute2, else ports), netns (a network namespace per node), ports (127.0.0.1, distinct ports)")
	})
	if code >= 0 {
		return code
	}
	var bad []string
	if boot <= 0 {
		bad = append(bad, fmt.Sprintf("--boot-timeout %v must be positive", boot))
	}
	if nodes < 1 {
		bad = append(bad, fmt.Sprintf("--nodes %d must be at least 1", nodes))
	}
	switch network {
	case broker.NetworkAuto, broker.NetworkNetns, broker.NetworkPorts:
		if nodes == 1 && network != broker.NetworkAuto {
			bad = append(bad, "--network is for a cluster (--nodes 2 or more)")
		}
	default:
		bad = append(bad, fmt.Sprintf("--network %q: want auto, netns or ports", network))
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(stderr, "bench broker up: %s\n", b)
		}
		return exitInput
	}
	// Ctrl-C while booting: StartManaged cleans up the half-started node.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := loadNodeState(statePath)
	switch {
	case err == nil:
		if code, done := reuseUp(ctx, st, nodes, statePath, stdout, stderr); done {
			return code
		}
	case !errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv
	}
	if nodes > 1 {
		return clusterUp(ctx, nodes, network, boot, statePath, stdout, stderr)
	}

	fmt.Fprintln(stderr, "bench broker: starting a private rabbitmq-server node...")
	m, err := broker.StartManaged(ctx, broker.ManagedConfig{Detached: true, BootTimeout: boot})
	if err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv
	}
	if err := saveNodeState(statePath, brokerState{NodeInfo: m.Info()}); err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if cerr := m.Close(cctx); cerr != nil {
			fmt.Fprintf(stderr, "bench broker up: %v\n", cerr)
		}
		return exitEnv
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	v, err := m.Version(vctx)
	cancel()
	if err == nil {
		fmt.Fprintf(stderr, "bench broker: RabbitMQ %s is up as %s at %s\n", v, m.NodeName(), redact.URL(m.URL()))
	}
	printNode(stdout, m.Info())
	return exitOK
}

// reuseUp handles a broker that an earlier up left: one that answers is
// printed again (done), or refused when it is not the size asked for; a stale
// one is removed (not done: start a new one).
func reuseUp(ctx context.Context, st brokerState, nodes int, statePath string, stdout, stderr io.Writer) (code int, done bool) {
	have, url, what := 1, st.URL, "node "+st.Node
	if st.Cluster != nil {
		have, url, what = len(st.Cluster.Nodes), st.Cluster.Nodes[0].URL, fmt.Sprintf("%d-node cluster bench-%s", len(st.Cluster.Nodes), st.Cluster.ID)
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, verr := broker.ServerVersion(vctx, url)
	cancel()
	if verr == nil {
		if have != nodes {
			fmt.Fprintf(stderr, "bench broker up: a %s is up, not the %d node(s) asked for; run bench broker down first\n", what, nodes)
			return exitInput, true
		}
		fmt.Fprintf(stderr, "bench broker: %s is already up\n", what)
		if st.Cluster != nil {
			printCluster(stdout, *st.Cluster)
		} else {
			printNode(stdout, st.NodeInfo)
		}
		return exitOK, true
	}
	// Stale state (the node died, the machine rebooted): clear it.
	fmt.Fprintf(stderr, "bench broker: %s from %s does not answer; removing it\n", what, statePath)
	if err := stopBroker(ctx, st, statePath); err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv, true
	}
	return 0, false
}

// clusterUp starts a detached cluster and prints every node's URL.
func clusterUp(ctx context.Context, nodes int, network string, boot time.Duration, statePath string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "bench broker: starting a private %d-node RabbitMQ cluster...\n", nodes)
	c, err := broker.StartCluster(ctx, broker.ClusterConfig{
		Nodes: nodes, Network: network,
		Node: broker.ManagedConfig{Detached: true, BootTimeout: boot},
	})
	if err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv
	}
	info := c.Info()
	if err := saveNodeState(statePath, brokerState{Cluster: &info}); err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if cerr := c.Close(cctx); cerr != nil {
			fmt.Fprintf(stderr, "bench broker up: %v\n", cerr)
		}
		return exitEnv
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	v, err := c.Version(vctx)
	cancel()
	if err == nil {
		fmt.Fprintf(stderr, "bench broker: RabbitMQ %s, %d nodes up in %v, node 1 at %s\n",
			v, c.Size(), c.BootTime().Round(100*time.Millisecond), redact.URL(c.URL()))
	}
	printCluster(stdout, info)
	return exitOK
}

func printCluster(w io.Writer, info broker.ClusterInfo) {
	for _, n := range info.Nodes {
		fmt.Fprintln(w, n.URL)
	}
	how := "every node in a network namespace of its own (netns): partitions cut real traffic"
	if info.Network == broker.NetworkPorts {
		how = "every node on 127.0.0.1, on its own ports (ports): no partitions"
	}
	fmt.Fprintf(w, "# cluster bench-%s: %s\n", info.ID, how)
	fmt.Fprintf(w, "# use it:  export %s=%s\n", broker.EnvURL, info.Nodes[0].URL)
	fmt.Fprintln(w, "# stop it: bench broker down")
}

func printNode(w io.Writer, info broker.NodeInfo) {
	fmt.Fprintln(w, info.URL)
	fmt.Fprintf(w, "# use it:  export %s=%s\n", broker.EnvURL, info.URL)
	fmt.Fprintln(w, "# stop it: bench broker down")
}

func brokerDown(args []string, stdout, stderr io.Writer) int {
	statePath, code := brokerFlags("down", "Stop the node or cluster bench broker up started and remove its data.", args, stdout, stderr, nil)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := loadNodeState(statePath)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(stderr, "bench broker: no node is up")
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench broker down: %v\n", err)
		return exitEnv
	}
	if err := stopBroker(ctx, st, statePath); err != nil {
		fmt.Fprintf(stderr, "bench broker down: %v\n", err)
		return exitEnv
	}
	if st.Cluster != nil {
		fmt.Fprintf(stdout, "stopped cluster bench-%s (%d nodes)\n", st.Cluster.ID, len(st.Cluster.Nodes))
	} else {
		fmt.Fprintf(stdout, "stopped %s\n", st.Node)
	}
	return exitOK
}

// stopBroker stops the node or cluster, removes its data (and a cluster's
// namespaces) and forgets it.
func stopBroker(ctx context.Context, st brokerState, statePath string) error {
	var b broker.Broker
	if st.Cluster != nil {
		c, err := broker.AttachCluster(*st.Cluster, broker.ClusterConfig{})
		if err != nil {
			return err
		}
		b = c
	} else {
		m, err := broker.Attach(st.NodeInfo, broker.ManagedConfig{})
		if err != nil {
			return err
		}
		b = m
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.Close(cctx); err != nil {
		return err
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove broker state: %w", err)
	}
	return nil
}

func loadNodeState(path string) (brokerState, error) {
	var st brokerState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read broker state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse broker state %s: %w", path, err)
	}
	if st.Cluster != nil && len(st.Cluster.Nodes) == 0 {
		return st, fmt.Errorf("parse broker state %s: a cluster without nodes", path)
	}
	return st, nil
}

// saveNodeState writes the state atomically, readable only by this user: the
// URL holds the node's credentials.
func saveNodeState(path string, info brokerState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create broker state directory: %w", err)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode broker state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".broker-*.json")
	if err != nil {
		return fmt.Errorf("write broker state: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write broker state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write broker state: %w", err)
	}
	return nil
}
