package brokertest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/chaos/broker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

func TestURLAnswers(t *testing.T) {
	u := URL(t)
	if again := URL(t); again != u {
		t.Errorf("URL changed within one binary: %q then %q", u, again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := broker.ServerVersion(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "3.") {
		t.Errorf("broker version %q, want 3.x", v)
	}
}

// TestURLStartsManagedNode leaves the shared URL pointing at a managed node,
// which Main stops when the tests end.
func TestURLStartsManagedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a rabbitmq-server node")
	}
	t.Setenv(broker.EnvURL, "")
	shared.mu.Lock()
	oldLocal := localURL
	localURL, shared.url = "amqp://guest:guest@127.0.0.1:1/", ""
	shared.mu.Unlock()
	t.Cleanup(func() {
		shared.mu.Lock()
		localURL = oldLocal
		shared.mu.Unlock()
	})
	u := URL(t)
	shared.mu.Lock()
	managed := shared.managed
	shared.mu.Unlock()
	if managed == nil || u != managed.URL() || u == oldLocal {
		t.Fatalf("URL = %q, want a managed node's", u)
	}
	if again := URL(t); again != u {
		t.Errorf("the managed node is not shared: %q then %q", u, again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := broker.ServerVersion(ctx, u); err != nil {
		t.Fatal(err)
	}
}

func TestURLPrefersEnv(t *testing.T) {
	const want = "amqp://someone:pw@broker.invalid:5672/"
	t.Setenv(broker.EnvURL, want)
	if got := URL(t); got != want {
		t.Errorf("URL = %q, want $%s = %q", got, broker.EnvURL, want)
	}
}

func TestName(t *testing.T) {
	valid := regexp.MustCompile(`^retry-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 100 {
		n := Name(t, "retry")
		if !valid.MatchString(n) {
			t.Fatalf("Name = %q, want retry-<8 hex digits>", n)
		}
		if seen[n] {
			t.Fatalf("Name repeated %q", n)
		}
		seen[n] = true
	}
	if n := Name(t, ""); !strings.HasPrefix(n, "t-") {
		t.Errorf("Name with empty prefix = %q", n)
	}
}
