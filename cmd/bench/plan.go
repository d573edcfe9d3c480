package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/scenarios"
)

var planCLI = cli{
	name:  "plan",
	usage: "FILE.yaml [--amqp-url URL] [--set key=value]...",
	about: `Shows what 'bench run' would do with the scenario, before anything starts: the broker it
would use, each variant with its jobs, its load phases and its fault timeline, and how long the
run should take. Nothing connects anywhere.

The estimate adds, per variant, the start-up (a private broker node about 5 s, the workers
about 1 s), the load's schedule, and a drain worked out from the handler's mean time, the
expected attempts per job, the concurrency and the rate limit. It is a guide, not a promise:
the machine and the broker decide the rest. The maximum lets every drain run to its
drain_timeout.`,
	examples: []string{
		"bench plan scenarios/capacity.yaml",
		"bench plan scenarios/spike.yaml --set load.0.spike.jobs=100000",
	},
	exits: exitsCheck,
}

func cmdPlan(args []string, s stdio) int {
	fs := planCLI.flags()
	amqpURL := fs.String("amqp-url", "", "the broker 'bench run' would get (default: as 'bench run --help' says)")
	sets := fs.StringArray("set", nil, "override a scenario key, as for bench run (repeatable)")
	if code, done := planCLI.parse(fs, args, s); done {
		return code
	}
	if !planCLI.args(fs, 1, 1, s) {
		return exitInput
	}
	sc, err := loadScenario(fs.Arg(0), *sets, s.in)
	if err != nil {
		fmt.Fprintln(s.err, err)
		return exitInput
	}
	managed, brokerText := planBroker(sc, *amqpURL, os.Getenv(broker.EnvURL))
	p, err := sc.Plan(managed)
	if err != nil {
		fmt.Fprintln(s.err, err)
		return exitInput
	}
	if err := printPlan(s.out, sc, p, brokerText); err != nil {
		fmt.Fprintln(s.err, "bench plan:", err)
		return exitEnv
	}
	return exitOK
}

// planBroker says which broker a run would use, in chaos/broker.Choose's order.
func planBroker(sc *scenarios.Scenario, flagURL, envURL string) (managed bool, text string) {
	switch {
	case sc.Broker.Cluster():
		return true, fmt.Sprintf("a private %d-node cluster for the run, shared by its variants (broker.nodes: %d; --amqp-url does not apply)", sc.Broker.Nodes, sc.Broker.Nodes)
	case flagURL != "":
		return false, "external, " + redact.URL(flagURL) + " (--amqp-url)"
	case sc.Broker.Managed:
		return true, "a private rabbitmq-server node per variant (broker.managed: true)"
	case envURL != "":
		return false, "external, " + redact.URL(envURL) + " ($AMQP_URL)"
	case sc.Broker.URL != "":
		return false, "external, " + redact.URL(sc.Broker.URL) + " (broker.url)"
	}
	return true, "a private rabbitmq-server node per variant (no URL given)"
}

func printPlan(w io.Writer, sc *scenarios.Scenario, p scenarios.Plan, brokerText string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (%s)\nbroker: %s\n", sc.Name, sc.File, brokerText)
	if len(sc.Overrides) > 0 {
		fmt.Fprintf(&b, "overrides: %s\n", strings.Join(sc.Overrides, " "))
	}
	if pl := sc.Placement; pl.Enabled() {
		fmt.Fprintf(&b, "placement: %s (waits up to %s for them)\n", placementText(pl), cmp.Or(pl.Timeout, scenarios.DefaultPlacementTimeout))
	}
	fmt.Fprintf(&b, "%d variant(s), about %s in all (at most %s)\n", len(p.Variants), round(p.Estimate), round(p.Max))
	for i, v := range p.Variants {
		fmt.Fprintf(&b, "\nvariant %d/%d %s: %d jobs, load %s, drain about %s (timeout %s), about %s (at most %s)\n",
			i+1, len(p.Variants), v.Name, v.Jobs, round(v.Load), round(v.Drain), v.DrainTimeout, round(v.Estimate), round(v.Max))
		switch {
		case v.Own != "":
			fmt.Fprintf(&b, "  workers: %s; their pace is known once they run\n", v.Own)
		case math.IsInf(v.Capacity, 1):
			b.WriteString("  workers: the handler takes no time; the broker sets the pace\n")
		default:
			fmt.Fprintf(&b, "  workers finish about %.0f jobs/s\n", v.Capacity)
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  timeline\tfrom\tuntil\twhat")
		type row struct {
			at   time.Duration
			line string
		}
		var rows []row
		for _, ph := range v.Phases {
			rows = append(rows, row{ph.Start, fmt.Sprintf("  load\t%s\t%s\t%s %s (%d jobs)", ph.Start, ph.End, ph.Kind, ph.Detail, ph.Jobs)})
		}
		for _, f := range v.Faults {
			until := "-"
			if f.Until > f.At {
				until = f.Until.String()
			}
			rows = append(rows, row{f.At, fmt.Sprintf("  fault\t%s\t%s\t%s %s", f.At, until, f.Target, f.What)})
		}
		sort.SliceStable(rows, func(a, b int) bool { return rows[a].at < rows[b].at })
		for _, r := range rows {
			fmt.Fprintln(tw, r.line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, warn := range v.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", warn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func round(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// placementText says where the workers and the load run.
func placementText(p scenarios.Placement) string {
	where := func(set scenarios.AgentSet) string {
		if set.Agents == 0 {
			return "this host"
		}
		return set.String() + " (bench agent)"
	}
	return "workers on " + where(p.Workers) + ", load from " + where(p.Generators)
}
