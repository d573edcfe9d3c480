package perf

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/brokertest"
)

// Calibrate moves its messages through the real broker, measures both rates
// and leaves no queue behind.
func TestCalibrate(t *testing.T) {
	url := brokertest.URL(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := Calibrate(ctx, url, 500, 256)
	if err != nil {
		t.Fatal(err)
	}
	if c.Messages != 500 || c.Size != 256 || c.PublishPerS <= 0 || c.ConsumePerS <= 0 || c.Elapsed <= 0 || c.Queue == "" {
		t.Fatalf("calibration %+v", c)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var amqpErr *amqp.Error
	if _, err := ch.QueueDeclarePassive(c.Queue, true, false, false, false, nil); !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		t.Errorf("queue %s after the calibration: %v, want not found", c.Queue, err)
	}

	if _, err := Calibrate(ctx, url, 1, 0); err == nil {
		t.Error("one message: no error")
	}
	_, err = Calibrate(ctx, "amqp://guest:s3cret@127.0.0.1:1/", 100, 10)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("closed port: %v", err)
	}
}
