package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/broker"
)

func TestBrokerBadInput(t *testing.T) {
	state := filepath.Join(t.TempDir(), "broker.json")
	for _, tc := range []struct {
		args []string
		want int
		msg  string // in stderr (or stdout for help)
	}{
		{nil, exitInput, "usage: bench broker"},
		{[]string{"sideways"}, exitInput, `unknown subcommand "sideways"`},
		{[]string{"help"}, exitOK, "--nodes N"},
		{[]string{"up", "--help"}, exitOK, "--network"},
		{[]string{"up", "--nodes", "0"}, exitInput, "--nodes 0 must be at least 1"},
		{[]string{"up", "--nodes"}, exitInput, "flag needs an argument"},
		{[]string{"up", "--nodes", "3", "--network", "wifi"}, exitInput, `--network "wifi"`},
		{[]string{"up", "--network", "netns"}, exitInput, "--network is for a cluster"},
		{[]string{"up", "--boot-timeout", "0s", "--nodes", "-1"}, exitInput, "--boot-timeout 0s must be positive"},
		{[]string{"up", "extra"}, exitInput, `unexpected argument "extra"`},
		{[]string{"down", "--nodes", "3"}, exitInput, "unknown flag: --nodes"},
		{[]string{"down"}, exitOK, "no node is up"},
	} {
		var stdout, stderr bytes.Buffer
		args := tc.args
		if len(args) > 0 && (args[0] == "up" || args[0] == "down") {
			args = append([]string{args[0], "--state-file", state}, args[1:]...)
		}
		if got := runBroker(args, &stdout, &stderr); got != tc.want {
			t.Errorf("bench broker %v: exit %d, want %d (stderr %q)", tc.args, got, tc.want, stderr.String())
		}
		if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.msg) {
			t.Errorf("bench broker %v: output %q lacks %q", tc.args, out, tc.msg)
		}
	}
	// A rejected flag set (two bad values) names both.
	var stderr bytes.Buffer
	runBroker([]string{"up", "--nodes", "0", "--boot-timeout", "-1s", "--state-file", state}, &bytes.Buffer{}, &stderr)
	if !strings.Contains(stderr.String(), "--nodes 0") || !strings.Contains(stderr.String(), "--boot-timeout -1s") {
		t.Errorf("stderr %q does not name both bad flags", stderr.String())
	}
}

// TestBrokerClusterUpDown runs bench broker up --nodes 2 and down: the nodes
// outlive up, and down removes them, their directories and namespaces.
func TestBrokerClusterUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a 2-node rabbitmq-server cluster")
	}
	state := filepath.Join(t.TempDir(), "broker.json")
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runBroker(append(args, "--state-file", state), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run("up", "--nodes", "2", "--boot-timeout", "2m")
	if code != exitOK {
		t.Fatalf("up: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st brokerState
	if err := json.Unmarshal(b, &st); err != nil || st.Cluster == nil {
		t.Fatalf("state %s: %v", b, err)
	}
	info := *st.Cluster
	t.Cleanup(func() {
		// Whatever the test did, nothing stays up.
		if c, err := broker.AttachCluster(info, broker.ClusterConfig{}); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.Close(ctx)
		}
	})
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v; want 0600 (it holds the password)", fi.Mode(), err)
	}
	if len(info.Nodes) != 2 {
		t.Fatalf("state has %d nodes", len(info.Nodes))
	}
	for _, n := range info.Nodes {
		if !strings.Contains(out, n.URL+"\n") {
			t.Errorf("up did not print %s:\n%s", n.URL, out)
		}
	}
	if strings.Contains(errOut, info.Nodes[0].URL) {
		t.Errorf("stderr shows the password: %s", errOut)
	}
	// up returned, the nodes run on.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, n := range info.Nodes {
		if _, err := broker.ServerVersion(ctx, n.URL); err != nil {
			t.Errorf("node %d does not answer after up returned: %v", i+1, err)
		}
	}

	if code, again, _ := run("up", "--nodes", "2"); code != exitOK || again != out {
		t.Errorf("second up: exit %d, printed\n%s\nwant\n%s", code, again, out)
	}
	if code, _, errOut := run("up", "--nodes", "3"); code != exitInput || !strings.Contains(errOut, "bench broker down first") {
		t.Errorf("up --nodes 3 over a 2-node cluster: exit %d, %s", code, errOut)
	}

	if code, out, errOut := run("down"); code != exitOK || !strings.Contains(out, "stopped cluster bench-"+info.ID) {
		t.Fatalf("down: exit %d: %s %s", code, out, errOut)
	}
	if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file still there: %v", err)
	}
	for i, n := range info.Nodes {
		if _, err := broker.ServerVersion(ctx, n.URL); err == nil {
			t.Errorf("node %d still answers after down", i+1)
		}
		if _, err := os.Stat(n.Dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("node %d directory still there: %v", i+1, err)
		}
	}
	for _, h := range info.Hosts {
		if _, err := os.Stat(filepath.Join("/run/netns", h.Netns)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace %s still there: %v", h.Netns, err)
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", h.Veth)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("veth %s still there: %v", h.Veth, err)
		}
	}
	if code, _, errOut := run("down"); code != exitOK || !strings.Contains(errOut, "no node is up") {
		t.Errorf("second down: exit %d, %s", code, errOut)
	}
}
