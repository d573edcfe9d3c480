package proxy

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
)

// startToxiproxyAPI serves toxiproxy's REST API in process, as
// toxiproxy-server would.
func startToxiproxyAPI(t *testing.T) string {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	r := mux.NewRouter()
	r.HandleFunc("/proxies", srv.ProxyCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", srv.ProxyUpdate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", srv.ProxyDelete).Methods("DELETE")
	r.HandleFunc("/proxies/{proxy}/toxics", srv.ToxicIndex).Methods("GET")
	r.HandleFunc("/proxies/{proxy}/toxics", srv.ToxicCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", srv.ToxicDelete).Methods("DELETE")
	api := httptest.NewServer(r)
	t.Cleanup(func() {
		api.Close()
		_ = srv.Collection.Clear()
	})
	return api.URL
}

func TestExternal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := startEcho(t)
	ext, err := NewExternal(startToxiproxyAPI(t))
	if err != nil {
		t.Fatalf("new external: %v", err)
	}
	var target Target
	p, err := ext.Add(ctx, "echo", "127.0.0.1:0", echo.addr())
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	target = p
	if _, port, _ := net.SplitHostPort(p.Addr()); port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want the bound port", p.Addr())
	}
	c := dial(t, target.Addr())
	roundTrip(t, c, []byte("plain"))

	const latency = 150 * time.Millisecond
	if err := target.AddToxic(ctx, Toxic{Name: "lat", Type: "latency", Stream: StreamBoth, Attrs: map[string]int64{"latency": latency.Milliseconds()}}); err != nil {
		t.Fatalf("add toxic: %v", err)
	}
	if d := roundTrip(t, c, []byte("slow")); d < 2*latency {
		t.Errorf("round trip took %v, want >= %v", d, 2*latency)
	}
	if err := target.RemoveToxic(ctx, "lat"); err != nil {
		t.Fatalf("remove toxic: %v", err)
	}
	if d := roundTrip(t, c, []byte("fast")); d > fast {
		t.Errorf("round trip after removal took %v", d)
	}
	if err := target.AddToxic(ctx, Toxic{Name: "bad", Type: "latency", Attrs: map[string]int64{"nope": 1}}); err == nil {
		t.Error("bad toxic accepted")
	}

	if err := target.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if _, err := net.DialTimeout("tcp", target.Addr(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while down: %v, want connection refused", err)
	}
	if err := target.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	roundTrip(t, dial(t, target.Addr()), []byte("up again"))

	// A second manager replaces the leftover proxy of a crashed run.
	if _, err := ext.Add(ctx, "echo", "127.0.0.1:0", echo.addr()); err != nil {
		t.Fatalf("re-add: %v", err)
	}
	if err := ext.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestExternalReachableAddr(t *testing.T) {
	ext, err := NewExternal("http://toxiproxy.internal:8474")
	if err != nil {
		t.Fatalf("new external: %v", err)
	}
	for in, want := range map[string]string{
		"0.0.0.0:4000":  "toxiproxy.internal:4000",
		"[::]:4000":     "toxiproxy.internal:4000",
		":4000":         "toxiproxy.internal:4000",
		"10.0.0.5:4000": "10.0.0.5:4000",
	} {
		if got := ext.reachable(in); got != want {
			t.Errorf("reachable(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := NewExternal("toxiproxy:8474"); err == nil {
		t.Error("URL without scheme accepted")
	}
}
