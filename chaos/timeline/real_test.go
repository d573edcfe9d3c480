package timeline

import (
	"github.com/benchmq/bench/chaos/fault"

	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/benchmq/bench/chaos/proxy"
)

// signalProxy passes calls to a real proxy and reports when a toxic is in.
type signalProxy struct {
	*proxy.Proxy
	added chan struct{}
}

func (p signalProxy) AddToxic(ctx context.Context, t proxy.Toxic) error {
	err := p.Proxy.AddToxic(ctx, t)
	close(p.added)
	return err
}

func TestTimelineOnRealProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = ln.Close() }()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		_, _ = io.Copy(c, c)
	})

	set := proxy.New()
	defer func() { _ = set.Close() }()
	p, err := set.Add("dependency", ln.Addr().String())
	if err != nil {
		t.Fatalf("add proxy: %v", err)
	}
	target := signalProxy{Proxy: p, added: make(chan struct{})}
	const latency = 250 * time.Millisecond
	specs := []fault.Spec{{At: 0, For: time.Second, Target: fault.TargetDependency, Toxic: "latency",
		Attrs: map[string]int64{"latency": latency.Milliseconds()}}}
	tl, err := New(specs, Targets{DependencyProxy: target}, nil)
	if err != nil {
		t.Fatalf("new timeline: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	roundTrip := func() time.Duration {
		start := time.Now()
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
			t.Fatalf("read: %v", err)
		}
		return time.Since(start)
	}

	done := make(chan []Applied, 1)
	go func() { done <- tl.Run(ctx, time.Now()) }()
	select {
	case <-target.added:
	case <-ctx.Done():
		t.Fatal("toxic never added")
	}
	if d := roundTrip(); d < latency {
		t.Errorf("round trip during the fault took %v, want >= %v", d, latency)
	}
	var applied []Applied
	select {
	case applied = <-done:
	case <-ctx.Done():
		t.Fatal("timeline did not finish")
	}
	if d := roundTrip(); d > 150*time.Millisecond {
		t.Errorf("round trip after the fault took %v, want < 150ms", d)
	}
	if len(applied) != 1 || applied[0].Err != nil {
		t.Fatalf("applied = %+v", applied)
	}
	if d := applied[0].End.Sub(applied[0].Start); d < 900*time.Millisecond {
		t.Errorf("fault lasted %v, want about 1s", d)
	}
	if got := p.Toxics(); len(got) != 0 {
		t.Errorf("toxics left on the proxy: %v", got)
	}
}
