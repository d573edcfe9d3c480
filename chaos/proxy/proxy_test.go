package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer is an upstream that writes back what it reads and closes the
// connection when the client stops writing.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e := &echoServer{ln: ln, conns: make(map[net.Conn]struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		e.mu.Lock()
		for c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

// setup returns a proxy in front of a fresh echo server.
func setup(t *testing.T) *Proxy {
	t.Helper()
	echo := startEcho(t)
	s := New()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close set: %v", err)
		}
	})
	p, err := s.Add("echo", echo.addr())
	if err != nil {
		t.Fatalf("add proxy: %v", err)
	}
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return c.(*net.TCPConn)
}

// roundTrip sends payload and reads it back, returning how long it took.
func roundTrip(t *testing.T, c net.Conn, payload []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read back %q, want %q", got, payload)
	}
	return time.Since(start)
}

func addToxic(t *testing.T, p *Proxy, tx Toxic) {
	t.Helper()
	if err := p.AddToxic(context.Background(), tx); err != nil {
		t.Fatalf("add toxic: %v", err)
	}
}

func removeToxic(t *testing.T, p *Proxy, name string) {
	t.Helper()
	if err := p.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("remove toxic: %v", err)
	}
}

// fast is the bound for a round trip through an untoxic proxy on a loaded
// machine.
const fast = 150 * time.Millisecond

func TestAddrIsBound(t *testing.T) {
	p := setup(t)
	host, port, err := net.SplitHostPort(p.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q (%v), want 127.0.0.1 with a real port", p.Addr(), err)
	}
	c := dial(t, p.Addr())
	if d := roundTrip(t, c, []byte("hello")); d > fast {
		t.Errorf("plain round trip took %v, want < %v", d, fast)
	}
}

func TestLatency(t *testing.T) {
	const latency = 200 * time.Millisecond
	for _, tc := range []struct {
		stream string
		min    time.Duration
	}{
		{StreamUp, latency},
		{StreamDown, latency},
		{"", latency},
		{StreamBoth, 2 * latency},
	} {
		t.Run("stream="+tc.stream, func(t *testing.T) {
			p := setup(t)
			c := dial(t, p.Addr()) // opened before the toxic: it applies to open connections too
			addToxic(t, p, Toxic{Name: "lat", Type: "latency", Stream: tc.stream, Attrs: map[string]int64{"latency": latency.Milliseconds()}})
			if d := roundTrip(t, c, []byte("ping")); d < tc.min {
				t.Errorf("round trip with latency took %v, want >= %v", d, tc.min)
			}
			removeToxic(t, p, "lat")
			if got := p.tp.Toxics.GetToxicArray(); len(got) != 0 {
				t.Errorf("toxiproxy still has %d toxics after remove", len(got))
			}
			if d := roundTrip(t, c, []byte("pong")); d > fast {
				t.Errorf("round trip after removal took %v, want < %v", d, fast)
			}
		})
	}
}

func TestToxicityIsPerConnection(t *testing.T) {
	const latency = 400 * time.Millisecond
	p := setup(t)
	addToxic(t, p, Toxic{Name: "lat", Type: "latency", Toxicity: 0.5, Attrs: map[string]int64{"latency": latency.Milliseconds()}})
	const n = 30 // both outcomes are missing with probability 2^-29
	durations := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		c := dial(t, p.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				return
			}
			durations[i] = time.Since(start)
		}()
	}
	wg.Wait()
	var slow, quick int
	for i, d := range durations {
		switch {
		case d == 0:
			t.Fatalf("connection %d failed", i)
		case d >= latency:
			slow++
		default:
			quick++
		}
	}
	if slow == 0 || quick == 0 {
		t.Errorf("toxicity 0.5: %d delayed, %d not; want some of each", slow, quick)
	}
}

func TestBandwidth(t *testing.T) {
	p := setup(t)
	c := dial(t, p.Addr())
	payload := bytes.Repeat([]byte("b"), 6000)
	addToxic(t, p, Toxic{Name: "bw", Type: "bandwidth", Attrs: map[string]int64{"rate": 10}}) // 10 KB/s
	// 6000 bytes at 10 bytes/ms take 600 ms; allow for the first chunk's head start.
	if d := roundTrip(t, c, payload); d < 450*time.Millisecond {
		t.Errorf("6000 bytes at 10 KB/s took %v, want >= 450ms", d)
	}
	removeToxic(t, p, "bw")
	if d := roundTrip(t, c, payload); d > fast {
		t.Errorf("6000 bytes without the toxic took %v, want < %v", d, fast)
	}
}

// closeTime half-closes c and returns how long the proxy takes to close the
// client side in turn.
func closeTime(t *testing.T, c *net.TCPConn) time.Duration {
	t.Helper()
	start := time.Now()
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("read to close: %v", err)
	}
	return time.Since(start)
}

func TestSlowClose(t *testing.T) {
	const delay = 300 * time.Millisecond
	p := setup(t)
	addToxic(t, p, Toxic{Name: "sc", Type: "slow_close", Attrs: map[string]int64{"delay": delay.Milliseconds()}})
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("data still flows"))
	if d := closeTime(t, c); d < delay {
		t.Errorf("close took %v, want >= %v", d, delay)
	}
	removeToxic(t, p, "sc")
	if d := closeTime(t, dial(t, p.Addr())); d > fast {
		t.Errorf("close without the toxic took %v, want < %v", d, fast)
	}
}

func TestTimeoutClosesAfterTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p := setup(t)
	c := dial(t, p.Addr())
	addToxic(t, p, Toxic{Name: "to", Type: "timeout", Attrs: map[string]int64{"timeout": timeout.Milliseconds()}})
	start := time.Now()
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("write: %v", err)
	}
	n, err := io.Copy(io.Discard, c)
	if d := time.Since(start); err != nil || n != 0 || d < timeout-50*time.Millisecond {
		t.Errorf("read %d bytes, err %v, closed after %v; want 0 bytes, EOF after ~%v", n, err, d, timeout)
	}
	removeToxic(t, p, "to")
	roundTrip(t, dial(t, p.Addr()), []byte("back"))
}

func TestTimeoutZeroBlackholes(t *testing.T) {
	p := setup(t)
	addToxic(t, p, Toxic{Name: "hole", Type: "timeout", Stream: StreamBoth})
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("into the void")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	var ne net.Error
	if n, err := c.Read(make([]byte, 16)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read through a blackhole = %d, %v; want a timeout", n, err)
	}
	removeToxic(t, p, "hole")
	roundTrip(t, dial(t, p.Addr()), []byte("back"))
}

func TestResetPeer(t *testing.T) {
	p := setup(t)
	addToxic(t, p, Toxic{Name: "rst", Type: "reset_peer"})
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	n, err := c.Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read = %d, %v; want connection reset", n, err)
	}
	removeToxic(t, p, "rst")
	roundTrip(t, dial(t, p.Addr()), []byte("back"))
}

func TestSlicer(t *testing.T) {
	p := setup(t)
	c := dial(t, p.Addr())
	payload := bytes.Repeat([]byte("s"), 1000)
	addToxic(t, p, Toxic{Name: "sl", Type: "slicer", Attrs: map[string]int64{"average_size": 10, "delay": 1000}})
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	reads, total, largest := 0, 0, 0
	buf := make([]byte, len(payload))
	for total < len(payload) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", total, err)
		}
		reads++
		total += n
		largest = max(largest, n)
	}
	// 100 slices 1 ms apart; a busy reader may find a few queued together.
	if reads < 10 {
		t.Errorf("1000 bytes arrived in %d reads (largest %d), want >= 10 small pieces", reads, largest)
	}
	removeToxic(t, p, "sl")
	roundTrip(t, c, payload)
}

func TestLimitData(t *testing.T) {
	// Down cuts the answer at 100 bytes; up cuts the request, and the
	// connection with it.
	for _, stream := range []string{StreamDown, StreamUp} {
		t.Run("stream="+stream, func(t *testing.T) {
			p := setup(t)
			addToxic(t, p, Toxic{Name: "lim", Type: "limit_data", Stream: stream, Attrs: map[string]int64{"bytes": 100}})
			c := dial(t, p.Addr())
			payload := make([]byte, 300)
			for i := range payload {
				payload[i] = byte(i)
			}
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("write: %v", err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			switch {
			case stream == StreamDown && !bytes.Equal(got, payload[:100]):
				t.Errorf("read %d bytes before close, want the first 100", len(got))
			case stream == StreamUp && (len(got) > 100 || !bytes.Equal(got, payload[:len(got)])):
				// The upstream side is closed right after the 100th byte,
				// so the echo of those may or may not make it back.
				t.Errorf("read %d bytes before close, want at most the first 100", len(got))
			}
			removeToxic(t, p, "lim")
			roundTrip(t, dial(t, p.Addr()), payload)
		})
	}
}

func TestDownUp(t *testing.T) {
	p := setup(t)
	open := dial(t, p.Addr())
	roundTrip(t, open, []byte("before"))
	ctx := context.Background()
	if err := p.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := p.Down(ctx); err != nil {
		t.Fatalf("second down: %v", err)
	}
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("open connection still readable after down")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); err == nil {
		_ = c.Close()
		t.Fatal("dial succeeded while down")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while down: %v, want connection refused", err)
	}
	if err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if err := p.Up(ctx); err != nil {
		t.Fatalf("second up: %v", err)
	}
	roundTrip(t, dial(t, p.Addr()), []byte("after"))
}

func TestValidation(t *testing.T) {
	p := setup(t)
	ctx := context.Background()
	bad := Toxic{Name: "", Type: "latncy", Stream: "sideways", Toxicity: 2}
	err := p.AddToxic(ctx, bad)
	if err == nil {
		t.Fatal("bad toxic accepted")
	}
	for _, want := range []string{"name is empty", "unknown toxic type", "stream", "toxicity"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := p.AddToxic(ctx, Toxic{Name: "x", Type: "latency", Attrs: map[string]int64{"latncy": 5}}); err == nil {
		t.Error("misspelt attribute accepted")
	}
	addToxic(t, p, Toxic{Name: "dup", Type: "latency", Stream: StreamBoth})
	if err := p.AddToxic(ctx, Toxic{Name: "dup", Type: "latency"}); err == nil {
		t.Error("duplicate toxic name accepted")
	}
	if err := p.RemoveToxic(ctx, "missing"); err == nil {
		t.Error("removing an unknown toxic succeeded")
	}
	s := New()
	defer func() { _ = s.Close() }()
	if _, err := s.Add("", ""); err == nil {
		t.Error("empty proxy name and upstream accepted")
	}
}
