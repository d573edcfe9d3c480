package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/report"
)

// runScenario writes a small scenario for task and returns its path. It
// emits an event, so that the run publishes into an exchange of its own.
func runScenario(t *testing.T, task, load string) string {
	t.Helper()
	src := "name: ci-trust\napp: bench\ntask: " + task + "\n" +
		"workers: {processes: 1, concurrency: 4, prefetch: 10}\n" +
		"job: {work: 1ms, emit: " + strings.TrimPrefix(task, "bench.") + "-done.done}\n" +
		"load:\n  - " + load + "\n" +
		"drain_timeout: 30s\n" +
		"matrix: {workers.concurrency: [2, 4]}\n" +
		"gates:\n  - lost == 0\n  - {expr: \"peak(worker_rss) < 1GiB\", when: {workers.concurrency: 4}}\n"
	path := filepath.Join(t.TempDir(), "ci-trust.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A run's whole output (result, report, JUnit, histograms, worker config and
// logs, the command's own output) holds no broker password; and result.json
// records what ran: the overrides, the effective scenario and its hash,
// bench's version; a gate whose matrix key a --set pinned is skipped.
func TestRunOutputHoldsNoPasswordAndRecordsWhatRan(t *testing.T) {
	t.Parallel() // each its own queues on the private node
	url, password := privateBroker(t)
	task := "bench." + brokertest.Name(t, "secret") + ".process"
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := bench(t, nil, "run", runScenario(t, task, "steady: {rate: 100/s, for: 2s}"),
		"--amqp-url", url, "--out", out, "--set", "workers.concurrency=2", "--set", "load.0.steady.rate=50/s")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, password) {
		t.Errorf("the command's output holds the password")
	}
	var files int
	err := filepath.Walk(out, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the broker password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"result.json", "junit.xml", "report.html", "default/worker.json", "default/worker-0.log"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("the output lacks %s (%d files): %v", want, files, err)
		}
	}

	res, err := report.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	sc := res.Scenario
	if strings.Join(sc.Overrides, " ") != "workers.concurrency=2 load.0.steady.rate=50/s" {
		t.Errorf("overrides %q", sc.Overrides)
	}
	if !strings.Contains(sc.Effective, "rate: 50/s") || strings.Contains(sc.Effective, "workers.concurrency: [") || len(sc.EffectiveSHA256) != 64 {
		t.Errorf("effective scenario %q (sha256 %q)", sc.Effective, sc.EffectiveSHA256)
	}
	if !strings.HasPrefix(res.Env.BenchVersion, "bench ") {
		t.Errorf("bench_version %q", res.Env.BenchVersion)
	}
	// The pinned concurrency 2 is not the gate's 4: skipped, in the result,
	// the summary and junit.xml, and the run still passes on its other gate.
	v := res.Variants[0]
	if len(v.Gates) != 2 || !v.Gates[1].Skipped || v.Gates[1].Passed || !strings.Contains(v.Gates[1].Reason, "--set pinned workers.concurrency to 2; the gate is for 4") {
		t.Errorf("gates %+v", v.Gates)
	}
	if !strings.Contains(stdout, "  skip peak(worker_rss) < 1GiB: --set pinned workers.concurrency to 2") {
		t.Errorf("the summary does not say the gate was skipped:\n%s", stdout)
	}
	junit, err := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(junit, []byte(`<skipped message="--set pinned workers.concurrency to 2; the gate is for 4">`)) {
		t.Errorf("junit.xml does not mark the gate skipped:\n%s", junit)
	}
	// CI logs (not a terminal): a progress line a second with rate, p99 so
	// far, queue depth and RSS.
	if !regexp.MustCompile(`(?m)^\[default\] +\d+\.\ds published \d+/100 \(\d+/s\) completed \d+ \(\d+/s\) p99 \S+ (ms|s|-) ready \d+ unacked \d+ rss \S+`).MatchString(stdout) {
		t.Errorf("no progress line:\n%s", stdout)
	}
}

// On an external broker, a queue of the scenario's name that holds messages
// and has a consumer the run did not start stops the run (exit 3) before
// anything touches it; --namespace auto runs beside it under names of the
// run's own, which it removes afterwards.
func TestRunLeavesForeignQueuesAlone(t *testing.T) {
	t.Parallel() // each its own queues on the private node
	url, _ := privateBroker(t)
	task := "bench." + brokertest.Name(t, "taken") + ".process"
	foreignQueue(t, url, task, 5, true)
	path := runScenario(t, task, "spike: {jobs: 50}")

	code, stdout, stderr := bench(t, nil, "run", path, "--amqp-url", url, "--out", filepath.Join(t.TempDir(), "refused"))
	if code != exitEnv {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitEnv, stdout, stderr)
	}
	for _, want := range []string{`queue "` + task + `" holds 4 ready messages and has 1 consumer this run did not start`, "--namespace auto", "--reset-queues"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if exists, msgs, consumers := queueState(t, url, task); !exists || msgs != 4 || consumers != 1 {
		t.Fatalf("the foreign queue was touched: exists %v, %d ready, %d consumers", exists, msgs, consumers)
	}

	out := filepath.Join(t.TempDir(), "ns")
	code, stdout, stderr = bench(t, nil, "run", path, "--amqp-url", url, "--out", out, "--namespace", "auto", "--set", "workers.concurrency=4")
	if code != exitOK {
		t.Fatalf("--namespace auto: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if exists, msgs, consumers := queueState(t, url, task); !exists || msgs != 4 || consumers != 1 {
		t.Fatalf("--namespace auto touched the foreign queue: exists %v, %d ready, %d consumers", exists, msgs, consumers)
	}
	res, err := report.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	ns := res.Scenario.Namespace
	if !regexp.MustCompile(`^run[0-9a-f]{8}$`).MatchString(ns) {
		t.Fatalf("namespace %q", ns)
	}
	if v := res.Variants[0]; len(res.Variants) != 1 || v.Ledger.Succeeded != 50 || v.Ledger.Lost != 0 {
		t.Errorf("%d variants, ledger %+v", len(res.Variants), v.Ledger)
	}
	for _, q := range []string{ns + "-" + task, ns + "-" + task + ".dead", ns + "-" + task + ".retry.0"} {
		if exists, _, _ := queueState(t, url, q); exists {
			t.Errorf("the run left its queue %s behind", q)
		}
	}
}

// --reset-queues takes a queue of the scenario's name over knowingly: its
// messages are deleted, the run uses it and removes it at the end. A queue
// that was there, empty and idle, is used and left in place.
func TestRunResetQueues(t *testing.T) {
	t.Parallel() // each its own queues on the private node
	url, _ := privateBroker(t)
	task := "bench." + brokertest.Name(t, "leftover") + ".process"
	foreignQueue(t, url, task, 3, false)
	path := runScenario(t, task, "spike: {jobs: 20}")
	code, stdout, stderr := bench(t, nil, "run", path, "--amqp-url", url, "--out", filepath.Join(t.TempDir(), "reset"), "--reset-queues", "--set", "workers.concurrency=4")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if exists, _, _ := queueState(t, url, task); exists {
		t.Errorf("the taken-over queue was left behind")
	}

	foreignQueue(t, url, task, 0, false)
	code, stdout, stderr = bench(t, nil, "run", path, "--amqp-url", url, "--out", filepath.Join(t.TempDir(), "empty"), "--set", "workers.concurrency=4")
	if code != exitOK {
		t.Fatalf("empty idle queue: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if exists, msgs, _ := queueState(t, url, task); !exists || msgs != 0 {
		t.Errorf("the queue that was there before: exists %v, %d messages", exists, msgs)
	}
	if exists, _, _ := queueState(t, url, task+".dead"); exists {
		t.Errorf("the dead-letter queue the run created was left behind")
	}
}

// --metrics-addr serves the run's live figures to Prometheus while it runs,
// under the names of the metric table.
func TestRunServesLiveMetrics(t *testing.T) {
	t.Parallel() // each its own queues on the private node
	url, _ := privateBroker(t)
	task := "bench." + brokertest.Name(t, "metrics") + ".process"
	path := runScenario(t, task, "steady: {rate: 50/s, for: 4s}")
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch([]string{"run", path, "--amqp-url", url, "--out", filepath.Join(t.TempDir(), "m"),
			"--metrics-addr", "127.0.0.1:0", "--set", "workers.concurrency=4"}, stdio{in: strings.NewReader(""), out: &stdout, err: &stderr})
	}()
	addrRe := regexp.MustCompile(`metrics: (http://\S+/metrics)`)
	// The sampled families appear with the first sample, which may come
	// after the first published job: scrape until both are there.
	want := []string{`bench_p99_end_to_end_seconds{`, `bench_peak_worker_rss_bytes{`, `bench_queue_ready{`, `bench_worker_rss_bytes{`, `bench_elapsed_seconds{`}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var scraped, last string
	for scraped == "" {
		select {
		case code := <-done:
			t.Fatalf("the run ended (exit %d) before its metrics showed a published job and every family\nlast scrape:\n%s\nstdout:\n%s\nstderr:\n%s", code, last, stdout.String(), stderr.String())
		case <-tick.C:
		}
		m := addrRe.FindStringSubmatch(stdout.String())
		if m == nil {
			continue
		}
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		last = string(body)
		if regexp.MustCompile(`(?m)^bench_published\{scenario="ci-trust",variant="default"\} [1-9]`).MatchString(last) && containsAll(last, want) {
			scraped = last
		}
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if strings.Contains(scraped, "bench_lost{") {
		t.Errorf("lost is served live, though it is known only at the end")
	}
}

// The soak scenario, shortened with --set: its growth and slope gates are
// judged on the run's series (the runner's own RSS among them) and pass. A
// few seconds are mostly warm-up, so the slopes get bounds for that.
func TestSoakShortened(t *testing.T) {
	t.Parallel()
	url, _ := privateBroker(t)
	out := filepath.Join(t.TempDir(), "soak")
	code, stdout, stderr := bench(t, nil, "run", "../../scenarios/soak.yaml", "--amqp-url", url, "--out", out,
		"--namespace", "auto", "--set", "load.0.steady.for=4s", "--set", "load.0.steady.rate=100/s",
		"--set", "gates.5=slope(worker_rss) < 64MiB", "--set", "gates.6=slope(runner_rss) < 64MiB")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res, err := report.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	v := res.Variants[0]
	if n := len(v.Series[report.SeriesRunnerRSS]); n < 8 || v.Series[report.SeriesRunnerRSS][n-1] < 1<<20 {
		t.Errorf("runner_rss_bytes series %v", v.Series[report.SeriesRunnerRSS])
	}
	var trend int
	for _, g := range v.Gates {
		if strings.HasPrefix(g.Expr, "growth(") || strings.HasPrefix(g.Expr, "slope(") {
			trend++
			if !g.Passed || g.Skipped {
				t.Errorf("gate %+v", g)
			}
		}
	}
	if trend != 4 {
		t.Errorf("%d growth and slope gates judged, want 4: %+v", trend, v.Gates)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
