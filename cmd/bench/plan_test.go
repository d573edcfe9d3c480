package main

import (
	"regexp"
	"strings"
	"testing"
)

// bench plan shows the variants, their jobs, the load and fault timeline and
// an estimated duration, without touching a broker.
func TestPlanCommand(t *testing.T) {
	t.Setenv("AMQP_URL", "amqp://someone:s3cret@rabbit.example:5672/")
	code, stdout, stderr := bench(t, nil, "plan", "../../scenarios/broker-flap.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, re := range []string{
		`broker: a private rabbitmq-server node per variant \(broker.managed: true\)`,
		`1 variant\(s\), about \d+s in all \(at most \S+\)`,
		`variant 1/1 default: 6000 jobs, load 40s`,
		`(?m)^  load +0s +40s +steady 150/s \(6000 jobs\)$`,
		`(?m)^  fault +10s +13s +broker timeout stream=both`,
		`(?m)^  fault +30s +- +broker kill$`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("plan lacks %s:\n%s", re, stdout)
		}
	}
	// The broker a run would use, credentials hidden.
	_, stdout, _ = bench(t, nil, "plan", "../../scenarios/spike.yaml", "--set", "workers.prefetch=50")
	if !strings.Contains(stdout, "broker: external, amqp://someone:***@rabbit.example:5672/ ($AMQP_URL)") || strings.Contains(stdout, "s3cret") ||
		!strings.Contains(stdout, "overrides: workers.prefetch=50") || !strings.Contains(stdout, "1 variant(s)") {
		t.Errorf("plan of spike with a pinned prefetch:\n%s", stdout)
	}
}
