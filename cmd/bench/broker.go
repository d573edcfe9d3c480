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
        print its URL; if one is already up, print its URL
  down  stop that node and remove its data

The node's state is kept in $XDG_STATE_HOME/bench/broker.json (default: the
user cache directory), so that down finds what up started.`

var brokerCLI = cli{
	name:  "broker",
	usage: "up|down [flags]",
	about: brokerAbout,
	examples: []string{
		"bench broker up",
		"export AMQP_URL=$(bench broker up | head -1)",
		"bench broker down",
	},
	exits: "0 done (down: also when no node is up)\n2 bad input: flags, an unknown subcommand\n3 the node could not be started or stopped",
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

func brokerUp(args []string, stdout, stderr io.Writer) int {
	var boot time.Duration
	statePath, code := brokerFlags("up", "Start a private RabbitMQ node and print its URL.", args, stdout, stderr, func(fs *pflag.FlagSet) {
		fs.DurationVar(&boot, "boot-timeout", 60*time.Second, "how long the node may take to boot")
	})
	if code >= 0 {
		return code
	}
	if boot <= 0 {
		fmt.Fprintf(stderr, "bench broker up: --boot-timeout %v must be positive\n", boot)
		return exitInput
	}
	// Ctrl-C while booting: StartManaged cleans up the half-started node.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	info, err := loadNodeState(statePath)
	switch {
	case err == nil:
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, verr := broker.ServerVersion(vctx, info.URL)
		cancel()
		if verr == nil {
			fmt.Fprintf(stderr, "bench broker: node %s is already up\n", info.Node)
			printNode(stdout, info)
			return exitOK
		}
		// Stale state (the node died, the machine rebooted): clear it.
		fmt.Fprintf(stderr, "bench broker: node %s from %s does not answer; removing it\n", info.Node, statePath)
		if err := stopNode(ctx, info, statePath); err != nil {
			fmt.Fprintf(stderr, "bench broker up: %v\n", err)
			return exitEnv
		}
	case !errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv
	}

	fmt.Fprintln(stderr, "bench broker: starting a private rabbitmq-server node...")
	m, err := broker.StartManaged(ctx, broker.ManagedConfig{Detached: true, BootTimeout: boot})
	if err != nil {
		fmt.Fprintf(stderr, "bench broker up: %v\n", err)
		return exitEnv
	}
	if err := saveNodeState(statePath, m.Info()); err != nil {
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

func printNode(w io.Writer, info broker.NodeInfo) {
	fmt.Fprintln(w, info.URL)
	fmt.Fprintf(w, "# use it:  export %s=%s\n", broker.EnvURL, info.URL)
	fmt.Fprintln(w, "# stop it: bench broker down")
}

func brokerDown(args []string, stdout, stderr io.Writer) int {
	statePath, code := brokerFlags("down", "Stop the node bench broker up started and remove its data.", args, stdout, stderr, nil)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	info, err := loadNodeState(statePath)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(stderr, "bench broker: no node is up")
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench broker down: %v\n", err)
		return exitEnv
	}
	if err := stopNode(ctx, info, statePath); err != nil {
		fmt.Fprintf(stderr, "bench broker down: %v\n", err)
		return exitEnv
	}
	fmt.Fprintf(stdout, "stopped %s\n", info.Node)
	return exitOK
}

// stopNode stops the node, removes its directory and forgets it.
func stopNode(ctx context.Context, info broker.NodeInfo, statePath string) error {
	m, err := broker.Attach(info, broker.ManagedConfig{})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		return err
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove broker state: %w", err)
	}
	return nil
}

func loadNodeState(path string) (broker.NodeInfo, error) {
	var info broker.NodeInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return info, fmt.Errorf("read broker state: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("parse broker state %s: %w", path, err)
	}
	return info, nil
}

// saveNodeState writes the state atomically, readable only by this user: the
// URL holds the node's credentials.
func saveNodeState(path string, info broker.NodeInfo) error {
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
