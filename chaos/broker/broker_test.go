package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/brokertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(brokertest.Main(m)) }

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// deadURL is an AMQP URL with a password on a port nobody listens on.
func deadURL(t *testing.T, password string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprintf("amqp://bench:%s@127.0.0.1:%d/", password, port)
}

func TestExternal(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	url := brokertest.URL(t)
	b, err := broker.NewExternal(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind() != broker.KindExternal || b.URL() != url {
		t.Errorf("Kind, URL = %q, %q", b.Kind(), b.URL())
	}
	v, err := b.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "3.") {
		t.Errorf("Version = %q, want 3.x", v)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestExternalUnavailableIsRedacted(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	const secret = "s3cret-pw"
	_, err := broker.NewExternal(ctx, deadURL(t, secret))
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the password: %v", err)
	}

	// A broker that answers but refuses the credentials.
	u := strings.Replace(brokertest.URL(t), "guest:guest@", "guest:"+secret+"@", 1)
	if !strings.Contains(u, secret) {
		t.Skip("the test broker does not use guest:guest")
	}
	_, err = broker.NewExternal(ctx, u)
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestChooseOrder(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	flag, env, scen := deadURL(t, "pw-flag"), deadURL(t, "pw-env"), deadURL(t, "pw-scenario")
	port := func(u string) string { return u[strings.LastIndex(u, ":"):] }
	noServer := broker.ManagedConfig{Server: filepath.Join(t.TempDir(), "no-rabbitmq-server")}
	tests := []struct {
		name string
		opts broker.ChooseOptions
		env  string
		want string // in the error: which source was used
	}{
		{"flag wins", broker.ChooseOptions{FlagURL: flag, ScenarioURL: scen, Managed: true}, env, port(flag)},
		{"env before scenario", broker.ChooseOptions{ScenarioURL: scen}, env, port(env)},
		{"scenario", broker.ChooseOptions{ScenarioURL: scen}, "", port(scen)},
		{"managed requested", broker.ChooseOptions{ScenarioURL: scen, Managed: true}, env, "no-rabbitmq-server"},
		{"nothing given", broker.ChooseOptions{}, "", "no-rabbitmq-server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Env = func(k string) string {
				if k == broker.EnvURL {
					return tt.env
				}
				return ""
			}
			tt.opts.ManagedConfig = noServer
			b, err := broker.Choose(ctx, tt.opts)
			if err == nil {
				b.Close(ctx)
				t.Fatal("Choose succeeded with no broker available")
			}
			if !errors.Is(err, broker.ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw-") {
				t.Errorf("error leaks a password: %v", err)
			}
		})
	}
}

func TestManagedBootFailureCleansUp(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	bin := t.TempDir()
	server := filepath.Join(bin, "rabbitmq-server")
	if err := os.WriteFile(server, []byte("#!/bin/sh\necho boom: cannot start\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	_, err := broker.StartManaged(ctx, broker.ManagedConfig{Server: server, Ctl: "/bin/true", BaseDir: base})
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "boom: cannot start") {
		t.Errorf("err = %v, want the node's output in it", err)
	}
	if left, _ := os.ReadDir(base); len(left) != 0 {
		t.Errorf("node directory left behind: %v", left)
	}
}

func TestManagedConfigValidation(t *testing.T) {
	ctx := testContext(t, 5*time.Second)
	_, err := broker.StartManaged(ctx, broker.ManagedConfig{BootTimeout: -1, StopTimeout: -1})
	if err == nil || !strings.Contains(err.Error(), "boot timeout") || !strings.Contains(err.Error(), "stop timeout") {
		t.Errorf("err = %v, want both bad timeouts reported", err)
	}
}

func TestContainer(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	if err := broker.DockerAvailable(ctx); err != nil {
		t.Skipf("no Docker engine, so no container broker here (the container provider is tested where Docker runs): %v", err)
	}
	c, err := broker.StartContainer(ctx, broker.ContainerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if c.Kind() != broker.KindContainer {
		t.Errorf("Kind = %q", c.Kind())
	}
	if v, err := c.Version(ctx); err != nil || !strings.HasPrefix(v, "3.") {
		t.Errorf("Version = %q, %v; want 3.x", v, err)
	}
	var _ broker.Broker = c
}

// TestManaged boots one node and runs the controller checks on it in order;
// it is long because each boot costs seconds, so the checks share one node.
func TestManaged(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a rabbitmq-server node")
	}
	t.Parallel() // with the cluster tests: each waits for its own nodes
	ctx := testContext(t, 4*time.Minute)
	// The default base directory: a root-only t.TempDir() is closed to the
	// rabbitmq user the node runs as.
	m, err := broker.StartManaged(ctx, broker.ManagedConfig{ErlArgs: "+S 1:1", Management: true})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close(context.Background())
		}
	})
	var _ broker.Controller = m
	if m.Kind() != broker.KindManaged || !strings.HasPrefix(m.NodeName(), "bench-") {
		t.Errorf("Kind, NodeName = %q, %q", m.Kind(), m.NodeName())
	}

	t.Run("version", func(t *testing.T) {
		v, err := m.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v, "3.") {
			t.Errorf("Version = %q, want 3.x", v)
		}
	})
	t.Run("erl args reach the VM", func(t *testing.T) {
		pid := m.PID()
		if pid == 0 {
			t.Fatal("PID = 0 for a running node")
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		// erl hands emulator flags to beam with a dash.
		if !strings.Contains(string(cmdline), "-S\x001:1") {
			t.Errorf("the VM's command line %q lacks +S 1:1", strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	})
	t.Run("stats from the management API", func(t *testing.T) {
		st := m.Stats()
		if st == nil {
			t.Fatal("Stats = nil on a node with the management plugin")
		}
		q := brokertest.Name(t, "stats")
		for _, b := range []string{"a", "b", "c"} {
			publishPersistent(ctx, t, m.URL(), q, b)
		}
		conn, err := broker.Dial(ctx, m.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // held, not acked
			if _, ok, err := ch.Get(q, false); err != nil || !ok {
				t.Fatalf("get: %v, %v", ok, err)
			}
		}
		// The broker refreshes its figures every 250 ms: poll (bounded by ctx).
		var c broker.QueueCounts
		for c.Ready != 1 || c.Unacked != 2 {
			if c, err = st.Queue(ctx, q); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("queue counts %+v, want 1 ready and 2 unacked", c)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if mem, err := st.Memory(ctx); err != nil || mem < 10<<20 {
			t.Errorf("Memory = %d, %v; want the node's tens of MiB", mem, err)
		}
		if _, err := st.Queue(ctx, q+"-missing"); err == nil {
			t.Error("Queue of a missing queue: no error")
		}
	})
	t.Run("restart keeps persistent messages", func(t *testing.T) {
		q := brokertest.Name(t, "restart")
		publishPersistent(ctx, t, m.URL(), q, "survives restart")
		if err := m.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		expectMessage(ctx, t, m.URL(), q, "survives restart")
	})
	t.Run("kill and start keep persistent messages", func(t *testing.T) {
		q := brokertest.Name(t, "kill")
		publishPersistent(ctx, t, m.URL(), q, "survives kill")
		if err := m.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := broker.ServerVersion(ctx, m.URL()); err == nil {
			t.Fatal("the node still answers after Kill")
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		expectMessage(ctx, t, m.URL(), q, "survives kill")
	})
	t.Run("block and unblock", func(t *testing.T) {
		conn, err := broker.Dial(ctx, m.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Block(ctx); err != nil {
			t.Fatal(err)
		}
		// The broker blocks a connection when it next publishes.
		if err := ch.PublishWithContext(ctx, "", brokertest.Name(t, "nowhere"), false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		waitBlocked(ctx, t, blocked, true)
		if err := m.Unblock(ctx); err != nil {
			t.Fatal(err)
		}
		waitBlocked(ctx, t, blocked, false)
	})
	t.Run("topology", func(t *testing.T) {
		top := m.Topology()
		checkSupports(t, top, broker.OpCancelConsumers)
		if err := top.CancelConsumers(ctx, "any"); !errors.Is(err, broker.ErrUnsupported) {
			t.Errorf("CancelConsumers on one node: err = %v, want ErrUnsupported", err)
		}
		checkDeleteQueue(ctx, t, top, m.URL(), "classic")
		checkCloseConnections(ctx, t, top, m.ManagementURL(), m.URL(), m.URL())
		t.Run("memory alarm", func(t *testing.T) {
			checkAlarm(ctx, t, m.URL(), top.RaiseMemoryAlarm, top.ClearMemoryAlarm)
		})
		t.Run("disk alarm", func(t *testing.T) {
			checkAlarm(ctx, t, m.URL(), top.RaiseDiskAlarm, top.ClearDiskAlarm)
		})
	})
	t.Run("external topology", func(t *testing.T) {
		// The node as an external broker: AMQP plus its management API.
		top, err := broker.ExternalTopology(m.URL(), m.ManagementURL())
		if err != nil {
			t.Fatal(err)
		}
		checkSupports(t, top, broker.OpCancelConsumers, broker.OpMemoryAlarm, broker.OpDiskAlarm)
		if err := top.RaiseMemoryAlarm(ctx); !errors.Is(err, broker.ErrUnsupported) {
			t.Errorf("RaiseMemoryAlarm on an external broker: err = %v, want ErrUnsupported", err)
		}
		checkDeleteQueue(ctx, t, top, m.URL(), "classic")
		checkCloseConnections(ctx, t, top, m.ManagementURL(), m.URL())
		noMgmt, err := broker.ExternalTopology(m.URL(), "")
		if err != nil {
			t.Fatal(err)
		}
		checkSupports(t, noMgmt, broker.OpCloseConnections, broker.OpCancelConsumers, broker.OpMemoryAlarm, broker.OpDiskAlarm)
		if _, err := broker.ExternalTopology("http://nope", ""); err == nil {
			t.Error("ExternalTopology accepted a URL that is not AMQP")
		}
	})
	t.Run("close removes everything", func(t *testing.T) {
		dir := m.Info().Dir
		done := make(chan error, 1)
		go func() { done <- m.Close(ctx) }() // concurrent Close calls share one result
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		closed = true
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("node directory still there: %v", err)
		}
		if _, err := broker.ServerVersion(ctx, m.URL()); err == nil {
			t.Error("the node still answers after Close")
		}
		if err := m.Start(ctx); err == nil {
			t.Error("Start after Close succeeded")
		}
	})
}

func publishPersistent(ctx context.Context, t *testing.T, url, queue, body string) {
	t.Helper()
	conn, err := broker.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	// Confirmed means written to disk: a crash after this must not lose it.
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish not confirmed: ack=%v, %v", ok, err)
	}
}

func expectMessage(ctx context.Context, t *testing.T, url, queue, body string) {
	t.Helper()
	conn, err := broker.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || string(d.Body) != body {
		t.Fatalf("queue %s: got %q (present %v), want %q", queue, d.Body, ok, body)
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		t.Error(err)
	}
}

func waitBlocked(ctx context.Context, t *testing.T, c <-chan amqp.Blocking, active bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	select {
	case b := <-c:
		if b.Active != active {
			t.Fatalf("connection.blocked active = %v, want %v (%s)", b.Active, active, b.Reason)
		}
	case <-ctx.Done():
		t.Fatalf("no connection.blocked notification (active %v)", active)
	}
}
