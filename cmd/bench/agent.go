package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/scenarios/runner"
)

var agentCLI = cli{
	name:  "agent",
	usage: "--amqp-url URL [--name NAME] [--labels k=v,...] [--dir DIR]",
	about: `Runs an agent: a long-lived process on any host that joins runs through the broker. A
'bench run' whose scenario has a placement key finds agents on the broker's control exchange
(bench.control), hands each its part (bench worker processes, a shard of the load) and gathers
what they measure through the broker: the agent needs no inbound port. Its worker processes
and generator use the agent's own --amqp-url. It serves one run at a time, until SIGINT or
SIGTERM. See docs/agents.md.`,
	examples: []string{
		"bench agent --amqp-url amqp://bench:secret@rabbit.internal:5672/ --name host-a --labels role=workers",
		"# the broker from the environment:",
		"AMQP_URL=amqp://bench:secret@rabbit.internal:5672/ bench agent --labels role=generators,zone=b",
	},
	exits: "0 stopped by a signal\n2 bad input (flags)\n3 environment failure",
}

// agentFlags are bench agent's flags.
type agentFlags struct {
	url, name, dir *string
	labels         *[]string
	verbose        *bool
}

func newAgentFlags() (*pflag.FlagSet, agentFlags) {
	fs := agentCLI.flags()
	return fs, agentFlags{
		url:     fs.String("amqp-url", "", "the broker to join through (default $AMQP_URL)"),
		name:    fs.String("name", "", "the agent's name, unique among agents (default the host name)"),
		labels:  fs.StringSlice("labels", nil, "labels placement selects by: k=v, comma-separated or repeated"),
		dir:     fs.String("dir", "", "where worker configs and logs go (default a directory in the system's temp dir)"),
		verbose: fs.Bool("verbose", false, "log at debug level"),
	}
}

func cmdAgent(args []string, s stdio) int {
	fs, f := newAgentFlags()
	url, name, labels, dir, verbose := f.url, f.name, f.labels, f.dir, f.verbose
	if code, done := agentCLI.parse(fs, args, s); done {
		return code
	}
	if !agentCLI.args(fs, 0, 0, s) {
		return exitInput
	}
	if *url == "" {
		*url = os.Getenv("AMQP_URL")
	}
	if *url == "" {
		return agentCLI.fail(s, "give --amqp-url or set AMQP_URL")
	}
	ls, err := parseLabels(*labels)
	if err != nil {
		return agentCLI.fail(s, "%v", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runner.RunAgent(ctx, runner.AgentConfig{URL: *url, Name: *name, Labels: ls, Dir: *dir, Logger: log}); err != nil {
		fmt.Fprintln(s.err, "bench agent:", redact.Error(err, *url))
		return exitInput
	}
	return exitOK
}

// parseLabels reads k=v pairs.
func parseLabels(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", p)
		}
		out[k] = v
	}
	return out, nil
}
