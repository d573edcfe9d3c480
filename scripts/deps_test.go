// Package scripts holds the project's shell scripts; this test runs them.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBin is a PATH directory holding a stand-in for each named command.
func fakeBin(t *testing.T, cmds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range cmds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// `make run` needs RabbitMQ only: as a non-root user with rabbitmq-server and
// without chromium, deps.sh run passes; deps.sh test (make test) names
// chromium and how to install it.
func TestDepsRunNeedsNoChromium(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	path := fakeBin(t, map[string]string{"rabbitmq-server": "exit 0", "id": "echo 1000"})
	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(bash, append([]string{"deps.sh"}, args...)...)
		cmd.Env = append([]string{"PATH=" + path}, env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run(nil, "run"); code != 0 {
		t.Errorf("deps.sh run without chromium: exit %d: %s", code, out)
	}
	if code, out := run(nil, "test"); code != 3 || !strings.Contains(out, "missing chromium") || !strings.Contains(out, "apt-get install -y chromium") {
		t.Errorf("deps.sh test without chromium: exit %d: %s", code, out)
	}
	if code, out := run([]string{"BENCH_SKIP_BROWSER=1", "BENCH_SKIP_NODE=1"}, "test"); code != 0 {
		t.Errorf("deps.sh test with BENCH_SKIP_BROWSER=1 BENCH_SKIP_NODE=1: exit %d: %s", code, out)
	}
	if code, out := run([]string{"BENCH_SKIP_BROWSER=1"}, "test"); code != 3 || !strings.Contains(out, "missing nodejs npm") {
		t.Errorf("deps.sh test without node: exit %d: %s", code, out)
	}
	if code, out := run(nil, "sideways"); code != 2 {
		t.Errorf("deps.sh sideways: exit %d: %s", code, out)
	}
	empty := fakeBin(t, map[string]string{"id": "echo 1000"})
	cmd := exec.Command(bash, "deps.sh", "run")
	cmd.Env = []string{"PATH=" + empty}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "missing rabbitmq-server") {
		t.Errorf("deps.sh run without rabbitmq-server: %v: %s", err, out)
	}

	// And the Makefile asks for just that.
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("no make on PATH: %v", err)
	}
	out, err := exec.Command(mk, "-n", "-C", "..", "run").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "scripts/deps.sh run") || strings.Contains(string(out), "deps.sh test") {
		t.Errorf("make run does not ask for the run dependencies only:\n%s", out)
	}
}

// `make deps` installs node and npm where missing and the Node example's
// packages with npm ci, once per lock file.
func TestDepsNodeRunsNpmCIOncePerLock(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	example := filepath.Join(root, "examples", "node-worker")
	if err := os.MkdirAll(filepath.Join(root, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(example, 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "scripts", "deps.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(example, "package-lock.json")
	if err := os.WriteFile(lock, []byte(`{"lockfileVersion": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(root, "npm-calls")
	path := fakeBin(t, map[string]string{
		"rabbitmq-server": "exit 0", "id": "echo 1000", "node": "exit 0",
		"npm": `/bin/mkdir -p node_modules && echo "$PWD $*" >>` + calls,
	})
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bash, append([]string{"scripts/deps.sh"}, args...)...)
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + path}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	npmCalls := func() string { b, _ := os.ReadFile(calls); return string(b) }
	if code, out := run("node"); code != 0 {
		t.Fatalf("deps.sh node: exit %d: %s", code, out)
	}
	if c := npmCalls(); strings.Count(c, "\n") != 1 || !strings.Contains(c, "node-worker ci ") {
		t.Fatalf("npm calls %q, want one npm ci in the example", c)
	}
	if code, out := run("node"); code != 0 || strings.Count(npmCalls(), "\n") != 1 {
		t.Fatalf("second deps.sh node: exit %d, npm calls %q: %s", code, npmCalls(), out)
	}
	if err := os.WriteFile(lock, []byte(`{"lockfileVersion": 3, "packages": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := run("node"); code != 0 || strings.Count(npmCalls(), "\n") != 2 {
		t.Fatalf("after a new lock: exit %d, npm calls %q: %s", code, npmCalls(), out)
	}
	if code, out := run("run"); code != 0 || strings.Count(npmCalls(), "\n") != 2 {
		t.Fatalf("deps.sh run touched node: exit %d, npm calls %q: %s", code, npmCalls(), out)
	}
}
