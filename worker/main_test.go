package worker

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/benchmq/bench/internal/brokertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(brokertest.Main(m)) }
