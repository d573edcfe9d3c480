package loadgen

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestTID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, run := range []string{"a1b2c3d4e5f60718", "other-run"} {
		for _, seq := range []int64{0, 1, 2, 255, 256, 1 << 40, 1<<62 - 1} {
			tid := TID(run, seq)
			if !re.MatchString(tid) {
				t.Fatalf("TID(%q, %d) = %q, not a version 8 UUID", run, seq, tid)
			}
			u, err := uuid.Parse(tid)
			if err != nil || u.Version() != 8 || u.Variant() != uuid.RFC4122 {
				t.Fatalf("TID(%q, %d) = %q: parse %v, version %d, variant %s", run, seq, tid, err, u.Version(), u.Variant())
			}
			if TID(run, seq) != tid {
				t.Fatalf("TID(%q, %d) is not deterministic", run, seq)
			}
			if seen[tid] {
				t.Fatalf("TID(%q, %d) = %q collides", run, seq, tid)
			}
			seen[tid] = true
		}
	}
}

func TestNewReportsEveryError(t *testing.T) {
	_, err := New(Config{
		URL:           "amqp://user:s3cretpw@host:notaport/",
		Phases:        []Phase{{Kind: KindSpike}, {Kind: "burst"}},
		Window:        -1,
		LateThreshold: -time.Second,
		FirstSeq:      -5,
	})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	msg := err.Error()
	for _, want := range []string{"parse url", "exchange or routing key", "phase 1: spike: jobs must be positive", `phase 2: unknown kind "burst"`, "run id", "first seq", "window", "late threshold"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cretpw") {
		t.Errorf("error leaks the password: %q", msg)
	}
	if _, err := New(Config{URL: "amqp://x/"}); err == nil || !strings.Contains(err.Error(), "at least one phase") {
		t.Errorf("no phases: error %v", err)
	}
}

func TestNewDefaults(t *testing.T) {
	g, err := New(Config{URL: "amqp://guest:guest@127.0.0.1:5672/", RoutingKey: "q", RunID: "r", Phases: []Phase{{Kind: KindSpike, Jobs: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if g.cfg.Window != DefaultWindow || g.cfg.LateThreshold != DefaultLateThreshold || g.cfg.Clock == nil || g.cfg.Logger == nil {
		t.Fatalf("defaults not applied: %+v", g.cfg)
	}
	if g.TotalJobs() != 3 {
		t.Fatalf("TotalJobs = %d", g.TotalJobs())
	}
}

// ParseTID inverts TID for the run's own TIDs and refuses every other string.
func TestParseTID(t *testing.T) {
	for _, seq := range []int64{0, 1, 255, 256, 1 << 40, 1<<62 - 1} {
		tid := TID("run-a", seq)
		if got, ok := ParseTID("run-a", tid); !ok || got != seq {
			t.Errorf("ParseTID(TID(run-a, %d)) = %d, %v", seq, got, ok)
		}
		if got, ok := ParseTID("run-a", strings.ToUpper(tid)); !ok || got != seq {
			t.Errorf("ParseTID of the upper-case TID of %d = %d, %v", seq, got, ok)
		}
		if _, ok := ParseTID("run-b", tid); ok {
			t.Errorf("TID of run-a seq %d parses as run-b's", seq)
		}
	}
	good := TID("run-a", 7)
	for _, bad := range []string{"", "7", good[:35], good + "0", good[:23] + "x" + good[24:], good[:20] + "zz" + good[22:],
		uuid.NewString(), good[:19] + "0" + good[20:]} {
		if seq, ok := ParseTID("run-a", bad); ok {
			t.Errorf("ParseTID(%q) = %d, true", bad, seq)
		}
	}
}
