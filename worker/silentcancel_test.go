package worker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// A consumer the broker drops without a basic.cancel the client sees (RabbitMQ
// sometimes sends none when a quorum queue is deleted on a cluster) must not
// leave the worker idle forever: the worker notices that its queue is gone, or
// holds jobs it is not given, and consumes again.
func TestConsumerLostWithoutCancel(t *testing.T) {
	a := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	app := uniq(t)
	task := app + ".job.run"
	cfg := baseConfig(t, app)
	cfg.URL = dropCancels(t, cfg.URL)
	cfg.ConsumerCheck = 300 * time.Millisecond
	a.deleteLater(queuesOf(task, cfg.Retry))
	done := make(chan struct{}, 10)
	w, _ := New(cfg)
	_ = w.HandleTask(task, func(ctx context.Context, j *Job) error {
		done <- struct{}{}
		return nil
	})
	start(t, w)
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	recv(t, ctx, done)

	// The broker cancels the consumer; the proxy keeps it from the worker.
	if _, err := a.channel().QueueDelete(task, false, false, false); err != nil {
		t.Fatal(err)
	}
	// The publish finds the queue gone (returned), declares it and publishes again.
	if err := w.PublishTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the job published after the consumer was lost was not handled in 15 s")
	}
	st := w.Stats()
	if st.ConsumerCancels != 0 || st.ConsumersLost != 1 {
		t.Errorf("consumer cancels %d (want 0: the proxy drops them), consumers lost %d (want 1)", st.ConsumerCancels, st.ConsumersLost)
	}
}

// dropCancels starts a proxy in front of the broker at rawURL that drops every
// basic.cancel the broker sends, and returns the URL through it.
func dropCancels(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(server, client)
				server.Close()
			})
			wg.Go(func() {
				_ = copyFrames(client, server)
				client.Close()
			})
		}
	})
	u.Host = ln.Addr().String()
	return u.String()
}

// copyFrames copies AMQP frames from src to dst, leaving out basic.cancel
// (class 60, method 30).
func copyFrames(dst io.Writer, src io.Reader) error {
	head := make([]byte, 7)
	for {
		if _, err := io.ReadFull(src, head); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(head[3:7])
		if size > 1<<24 {
			return errors.New("frame too large")
		}
		body := make([]byte, size+1) // payload and frame end
		if _, err := io.ReadFull(src, body); err != nil {
			return err
		}
		if head[0] == 1 && size >= 4 && binary.BigEndian.Uint16(body[0:2]) == 60 && binary.BigEndian.Uint16(body[2:4]) == 30 {
			continue
		}
		if _, err := dst.Write(append(head[:7:7], body...)); err != nil {
			return err
		}
	}
}
