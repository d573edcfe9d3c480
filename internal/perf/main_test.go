package perf

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/brokertest"
)

// envChild makes the test binary a consumer child: Run re-executes it, as
// `bench perf` re-executes itself with --child.
const envChild = "BENCH_PERF_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(ChildMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(brokertest.Main(m))
}
