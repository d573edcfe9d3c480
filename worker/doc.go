// Package worker is the runtime services use to consume tasks and events from RabbitMQ
// and to publish them.
//
// # Tasks and events
//
// A task "app.model.verb" (e.g. "api.user.authorize") is a durable queue of exactly
// that name, published through the default exchange and load-balanced across every
// instance of the owning app. Only the owning app (the task's first segment) may publish
// or handle it; anything else is an error at registration or publish time.
//
// An event "model.verbed" (e.g. "user.authorized") is a durable fanout exchange of that
// name. Every app that subscribes gets its own queue "<app>.<event>", so publishing an
// event never needs to know who listens, and each subscriber retries independently.
//
// Names are dot-separated segments matching [a-z][a-z0-9_-]*; tasks have at least three
// segments, events at least two. See ValidateTask and ValidateEvent.
//
// # A worker
//
//	w, err := worker.New(worker.Config{URL: url, App: "billing", Prefetch: 20, Concurrency: 8})
//	err = w.HandleTask("billing.invoice.send", send, worker.WithRecovery(markFailed))
//	err = w.HandleEvent("user.registered", onRegistered)
//	err = w.Run(ctx) // until ctx is cancelled; <-w.Ready() once consuming
//
// A HandlerFunc gets a context and the Job (ID, TID, name, body, attempt, headers,
// first-published time, redelivered flag). Returning nil acks the job. Returning an
// error retries it with backoff; Permanent(err) skips the retries, RetryAfter(d, err)
// picks the delay, and Malformed(err) (what JSON returns for a body that does not
// decode) dead-letters at once. A panic is a failure like any other.
//
// # Retries
//
// The delay after attempt n is Retry.MinDelay·2^(n-1), capped at Retry.MaxDelay (no cap
// when it is 0; the attempts still end at MaxAttempts), optionally jittered into
// [d/2, d]. In the default RetryBroker mode the worker publishes a copy of the job with
// x-attempt = n+1 to a retry-tier queue "<queue>.retry.<ms>ms" whose TTL is the delay
// and which dead-letters back into the job's own queue through the default exchange,
// waits for the broker's confirm and only then acks the original. So the worker holds
// nothing while a job waits; a crash between the two steps leaves a duplicate, never a
// loss, and never resets the attempt count, which travels in the message. There is one
// tier per distinct delay (at most MaxAttempts-1 queues, see RetryQueues); a short delay
// never waits behind a long one because they are in different queues. A jittered or
// RetryAfter delay between two tiers goes to the longer tier with a per-message
// expiration; RetryAfter delays are capped at the longest tier.
//
// RetryInProcess mode sleeps while holding the message instead; it exists to show the
// cost of doing so (prefetch slots and goroutines held, attempts lost on a crash).
//
// After the last attempt, or a permanent error, the handler's RecoveryFunc runs (a
// failing or panicking one is logged), then the job is published with a confirm to the
// durable queue "<queue>.dead" with the headers HeaderError, HeaderAttempts,
// HeaderDiedAt, HeaderOriginalQueue and HeaderTID, and acked. All other headers of the
// original (e.g. a load generator's) are kept on retry and dead-letter copies.
//
// # Flow control
//
// Prefetch (basic.qos, per handler's channel) and Concurrency (handler goroutines per
// registered task or event) are separate. Prefetch 0 is unlimited and logged as a
// warning. Timeout gives every attempt a fresh deadline; a timeout is a retriable
// failure. RateLimit is a token bucket per worker, taken before a delivery is received.
//
// With Breaker.Enabled, a sony/gobreaker circuit breaker counts attempts. When the
// failure ratio trips it, the worker cancels its consumers (basic.cancel) and requeues
// what was prefetched but not started, without charging an attempt. After OpenFor it
// probes, with Breaker.HealthCheck if set, otherwise by handling a single job fetched
// with basic.get, and consumes again once the probe succeeds. Stats and OnBreakerChange
// expose the state and every transition.
//
// # Transaction IDs
//
// Every message carries a TID in HeaderTID. Publishing with a handler's context
// (w.PublishTask(ctx, ...)) inherits the job's TID; WithTID sets one explicitly;
// otherwise a publish starts a new transaction with a UUIDv7. Logger(ctx) returns a
// slog.Logger carrying it.
//
// # Connections and shutdown
//
// Every publish waits for a publisher confirm; a nack, a timeout or a connection lost
// before the confirm is returned as an error, never dropped. After a connection or
// channel loss Run reconnects with capped, jittered backoff and declares the topology,
// QoS and consumers again. Handlers in flight on the dead channel finish, their acks
// fail and the broker redelivers the jobs (at-least-once; Job.Redelivered says so).
// connection.blocked from the broker shows in Stats and the log.
//
// When ctx is cancelled Run stops intake, waits up to ShutdownTimeout for in-flight
// jobs, then cancels their contexts and requeues what is left, and closes the
// connection. A handler that ignores its context delays Run's return.
//
// Publisher publishes for services that do not consume. NewCollector exports Stats to
// Prometheus.
package worker
