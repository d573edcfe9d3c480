package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/benchmq/bench/internal/brokertest"
	"github.com/benchmq/bench/worker"
)

// dlqRun runs `bench dlq ARGS` against url and returns its exit code and output.
func dlqRun(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runDLQ(append(args, "--amqp-url", url), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDLQCommand(t *testing.T) {
	url := brokertest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	task := strings.ReplaceAll(brokertest.Name(t, "dlq"), "-", "") + ".invoice.send"
	dead := worker.DeadQueue(task)
	for _, q := range []string{task, dead} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{task, dead} {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
	})
	for i, id := range []string{"inv-1", "inv-2", "inv-3"} {
		msg := amqp.Publishing{MessageId: id, Body: []byte("body of " + id), Headers: amqp.Table{
			worker.HeaderTID: "tid-" + id, worker.HeaderError: "card declined", worker.HeaderAttempts: int32(3),
			worker.HeaderDiedAt: time.Now().UnixMilli(), worker.HeaderOriginalQueue: task, worker.HeaderAttempt: int32(3),
			"x-seq": int64(i)}}
		if err := ch.PublishWithContext(ctx, "", dead, false, false, msg); err != nil {
			t.Fatal(err)
		}
	}
	waitReady := func(q string, n int) {
		t.Helper()
		for {
			st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err == nil && st.Messages == n {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: want %d messages, have %d (%v)", q, n, st.Messages, err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitReady(dead, 3)

	code, out, errOut := dlqRun(t, url, "ls", task)
	if code != exitOK || !strings.Contains(out, dead+": 3 dead letters") || !strings.Contains(out, "tid-inv-2") || !strings.Contains(out, "card declined") {
		t.Errorf("ls: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = dlqRun(t, url, "ls", dead, "--json", "--limit", "2")
	var list struct {
		Count int `json:"count"`
		Items []struct {
			ID       string `json:"id"`
			Attempts int    `json:"attempts"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != exitOK || err != nil || list.Count != 3 || len(list.Items) != 2 || list.Items[0].ID != "inv-1" || list.Items[0].Attempts != 3 {
		t.Errorf("ls --json: exit %d, %v: %s", code, err, out)
	}
	waitReady(dead, 3)
	code, out, _ = dlqRun(t, url, "show", task, "--id", "inv-3")
	if code != exitOK || !strings.Contains(out, "tid:          tid-inv-3") || !strings.Contains(out, "body of inv-3") || !strings.Contains(out, "x-seq: 2") {
		t.Errorf("show --id: exit %d\n%s", code, out)
	}
	waitReady(dead, 3)
	if code, _, errOut := dlqRun(t, url, "show", task, "--index", "7"); code != exitInput || !strings.Contains(errOut, "no such dead letter") {
		t.Errorf("show --index 7: exit %d, %s", code, errOut)
	}
	waitReady(dead, 3)
	code, out, _ = dlqRun(t, url, "replay", task, "--id", "inv-2")
	if code != exitOK || !strings.Contains(out, "replayed 1 ") {
		t.Errorf("replay --id: exit %d, %s", code, out)
	}
	waitReady(task, 1)
	d, ok, err := ch.Get(task, true)
	if err != nil || !ok {
		t.Fatalf("get replayed job: %v %v", ok, err)
	}
	if d.MessageId != "inv-2" || d.Headers[worker.HeaderTID] != "tid-inv-2" || d.Headers[worker.HeaderAttempt] != nil ||
		d.Headers[worker.HeaderError] != nil || d.Headers[worker.HeaderReplays] != int32(1) || d.Headers["x-seq"] != int64(1) {
		t.Errorf("replayed message: id %q headers %v", d.MessageId, d.Headers)
	}
	waitReady(dead, 2)
	if code, _, errOut := dlqRun(t, url, "purge", task); code != exitInput || !strings.Contains(errOut, "--yes") {
		t.Errorf("purge without --yes: exit %d, %s", code, errOut)
	}
	if code, out, _ := dlqRun(t, url, "purge", task, "--yes"); code != exitOK || !strings.Contains(out, "purged 2 ") {
		t.Errorf("purge --yes: exit %d, %s", code, out)
	}
	waitReady(dead, 0)
}

func TestDLQCommandBadInput(t *testing.T) {
	url := brokertest.URL(t)
	for _, tc := range []struct {
		args []string
		want int
		say  string
	}{
		{[]string{}, exitInput, "usage"},
		{[]string{"--help"}, exitOK, ""},
		{[]string{"peek", "a.b.c"}, exitInput, "unknown subcommand"},
		{[]string{"ls"}, exitInput, "missing arguments"},
		{[]string{"ls", "a.b.c", "--nope"}, exitInput, "unknown flag"},
		{[]string{"ls", "Not A Queue", "--amqp-url", url}, exitInput, "queue"},
		{[]string{"ls", "nobody.has.this", "--amqp-url", url}, exitInput, "no such dead-letter queue"},
		{[]string{"ls", "a.b.c", "--amqp-url", "amqp://guest:s3cret@127.0.0.1:1/"}, exitEnv, "guest:***@"},
		{[]string{"ls", "a.b.c", "--limit", "-1"}, exitInput, "negative"},
	} {
		var stdout, stderr bytes.Buffer
		code := runDLQ(tc.args, &stdout, &stderr)
		if code != tc.want || !strings.Contains(stdout.String()+stderr.String(), tc.say) || strings.Contains(stderr.String(), "s3cret") {
			t.Errorf("bench dlq %v: exit %d, want %d saying %q\n%s%s", tc.args, code, tc.want, tc.say, stdout.String(), stderr.String())
		}
	}
}
