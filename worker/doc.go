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
// segments, events at least two. A queue's dead-letter and retry queues are named after
// it ("<queue>.dead", "<queue>.retry.<ms>ms"), so names ending in ".dead" or containing
// ".retry." are refused, as are names whose derived queues exceed AMQP's 255 bytes. See
// ValidateTask and ValidateEvent.
//
// # A worker
//
//	w, err := worker.New(worker.Config{URL: url, App: "billing", Prefetch: 20, Concurrency: 8})
//	err = w.HandleTask("billing.invoice.send", send, worker.WithRecovery(markFailed))
//	err = w.HandleEvent("user.registered", onRegistered)
//	err = w.Run(ctx) // until ctx is cancelled; <-w.Ready() once consuming
//
// A HandlerFunc gets a context and the Job (ID, TID, name, body, attempt, headers,
// first-published time, redelivered flag, trace parent). Returning nil acks the job.
// Returning an error retries it with backoff; Permanent(err) skips the retries,
// RetryAfter(d, err) picks the delay, and Malformed(err) (what JSON returns for a body
// that does not decode) dead-letters at once. A panic is a failure like any other.
//
// Handler options override the worker's settings for one handler: WithRetry,
// WithTimeout, WithConcurrency and WithRateLimit (a token bucket of its own), beside
// WithRecovery and WithMiddleware.
//
// # Middleware
//
// A Middleware wraps a HandlerFunc (func(HandlerFunc) HandlerFunc). Worker.Use adds
// middleware for every handler; WithMiddleware for one, inside the worker's. It runs
// once per attempt, with the attempt's context (deadline, Job, TID) and sees its
// outcome; retries, the breaker, timeouts and the recovery function remain the
// runtime's. The otelworker package is such a middleware, for OpenTelemetry tracing.
//
// # Retries and their delays
//
// The delay after attempt n is Retry.MinDelay·2^(n-1), capped at Retry.MaxDelay (no cap
// when it is 0; the attempts still end at MaxAttempts). In the default RetryBroker mode
// the worker publishes a copy of the job with x-attempt = n+1 to a retry-tier queue
// "<queue>.retry.<ms>ms", waits for the broker's confirm and only then acks the
// original. So the worker holds nothing while a job waits; a crash between the two
// steps leaves a duplicate, never a loss, and never resets the attempt count, which
// travels in the message.
//
// Each tier queue holds exactly one delay, as its queue TTL (x-message-ttl), and
// dead-letters into the job's own queue through the default exchange (never to an
// event's fanout exchange, so no other subscriber sees a retry). A queue only expires
// messages at its head, so a tier with one TTL is a FIFO of equal waits: no job waits
// behind a longer one and none waits longer than its tier. The tiers are, per attempt
// that can be followed by another, its delay d, and with Jitter the four delays
// d·2^(-k/4), k = 1..4, down to d/2 (see RetryQueues); at most 5·(MaxAttempts-1)
// queues, shared by attempts whose delays coincide.
//
// Delay resolution: tier TTLs are whole milliseconds (rounded down). A jittered delay
// is drawn uniformly from [d/2, d] and rounded down to the next tier, so it is one of
// d, 0.84d, 0.71d, 0.59d (or, for a draw of exactly 0, d/2), at most 16 % below the
// draw and never above d or MaxDelay. RetryAfter(d) and After(d) are rounded up to two
// significant digits (100ms, 110ms, ..., 1s, 1.1s, ..., 10s, 11s, ...: never shorter,
// at most 10 % longer); their tier queue is declared when first used. RetryAfter is
// capped at MaxDelay. No delay can exceed the broker's longest TTL, 10 years: New
// refuses a policy whose delays would. The wait itself is the broker's: TTL expiry
// plus dead-lettering adds a few milliseconds on a quiet broker.
//
// RetryInProcess mode sleeps while holding the message instead; it exists to show the
// cost of doing so (prefetch slots and goroutines held, attempts lost on a crash).
//
// # Delayed tasks
//
// PublishTask(ctx, task, body, After(d)) publishes into the task's delay queue of d (a
// tier queue as above), which dead-letters the job into the task's queue after d.
//
// # Recovery and dead letters
//
// After the last attempt, or a permanent error, the handler's RecoveryFunc runs (a
// failing, panicking or hung one is logged), then the job is published with a confirm
// to the durable queue "<queue>.dead" with the headers HeaderError, HeaderAttempts,
// HeaderDiedAt, HeaderOriginalQueue and HeaderTID, and acked. All other headers of the
// original (e.g. a load generator's) are kept on retry and dead-letter copies. The
// recovery function runs once per job: when the dead-letter publish fails, the worker
// holds the job and tries again rather than requeueing it, and if its connection ends
// first, the job's redelivery goes straight to the dead queue.
//
// DeadLetters (OpenDeadLetters) lists, replays and purges a dead-letter queue; the
// bench command wraps it as `bench dlq ls|show|replay|purge QUEUE`. Replay moves dead
// letters back into their queue as jobs with the same ID and TID whose attempts count
// from 1 again (HeaderReplays counts the replays).
//
// # Flow control
//
// Prefetch (basic.qos, per handler's channel) and Concurrency (handler goroutines per
// registered task or event) are separate. Prefetch 0 is unlimited and logged as a
// warning.
//
// Timeout gives every attempt a fresh deadline; a timeout is a retriable failure. It is
// enforced: with a timeout the handler runs in a goroutine of its own, and at the
// deadline the attempt fails and its slot is freed even if the handler ignores its
// context. Such a handler is abandoned (counted in Stats.Abandoned until it returns;
// what it returns is ignored) and shutdown does not wait for it. A handler must not
// modify its Job, which the runtime may still read meanwhile. Without a timeout the
// handler runs in the consumer's goroutine, at no cost.
//
// RateLimit is a token bucket per worker (WithRateLimit: per handler), taken once a
// delivery is in hand, so that the bucket's burst is the real burst.
//
// # Circuit breaker
//
// With Breaker.Enabled, a sony/gobreaker circuit breaker counts attempts. Only failures
// that say the dependency is sick count: by default retriable errors (timeouts and
// panics included), not Permanent or Malformed ones; Breaker.IsFailure classifies
// otherwise. When the failure ratio trips it, the worker cancels its consumers
// (basic.cancel) and requeues what was prefetched but not started, without charging an
// attempt. After OpenFor the breaker is half-open and admits exactly one probe: the
// Breaker.HealthCheck if set, otherwise a single job fetched with basic.get (polled
// while the queues are empty). Its success closes the breaker and the consumers start
// again; its failure opens it for another OpenFor. Stats and OnBreakerChange expose
// the state and every transition; OnBreakerChange runs outside the breaker and may call
// Stats.
//
// # Transaction IDs and tracing
//
// Every message carries a TID in HeaderTID. Publishing with a handler's context
// (w.PublishTask(ctx, ...)) inherits the job's TID; WithTID sets one explicitly;
// otherwise a publish starts a new transaction with a UUIDv7. Logger(ctx) returns a
// slog.Logger carrying it. The W3C trace context (HeaderTraceParent, HeaderTraceState)
// travels beside the TID the same way: a publish carries that of its context
// (WithTraceParent, set by tracing middleware) or of the job being handled.
//
// # Connections, publishing and errors
//
// Config.URLs adds brokers (a cluster's nodes): every (re)connect tries them, with URL
// first, in order or, with FailoverRandom, in a random order. After a connection or
// channel loss Run reconnects with capped, jittered backoff and declares the topology,
// QoS and consumers again. A consumer that the broker cancels (its queue was deleted,
// or its leader moved) is restored in place: the queue is declared again and consumed
// again (Stats.ConsumerCancels). A consumer the broker drops without telling it (RabbitMQ
// sometimes sends no basic.cancel when a quorum queue is deleted on a cluster) is found
// by Config.ConsumerCheck: an idle consumer checks every 5 s that its queue exists and
// holds no ready jobs it is not given, and otherwise consumes again
// (Stats.ConsumersLost). Handlers in flight on a dead channel finish, their
// acks fail and the broker redelivers the jobs (at-least-once; Job.Redelivered says
// so). connection.blocked from the broker shows in Stats and the log.
//
// Every publish waits for a publisher confirm. Publishes into queues (tasks, retries,
// dead letters) are mandatory: if the broker returns one because its queue was
// deleted, the queue is declared again and the message published once more. A failed
// publish is an error, never dropped: ErrNacked (refused), ErrUnroutable (returned) or
// ErrUnconfirmed (the channel closed or the wait timed out first: the outcome is
// unknown).
//
// What retrying cannot fix is a *ConfigError: from New, HandleTask and HandleEvent for
// configuration that is invalid on its face, and from Run, instead of reconnecting
// forever, when the broker refuses the credentials, the permissions or the queues'
// arguments (ACCESS_REFUSED, NOT_ALLOWED, PRECONDITION_FAILED, e.g. a queue declared
// with another type).
//
// When ctx is cancelled Run stops intake, waits up to ShutdownTimeout for in-flight
// jobs, then cancels their contexts and requeues what is left, and closes the
// connection. A handler without a timeout that ignores its context delays Run's
// return.
//
// # Queue types
//
// With QueueType quorum every queue the worker declares is a quorum queue (replicated
// on a cluster): job, retry-tier and dead queues. Job queues get DeliveryLimit
// (x-delivery-limit, default 20) with the broker dead-lettering into "<queue>.dead":
// the backstop against a message that crashes every process that takes it.
//
// # Observability
//
// Stats is a snapshot of the worker's counters and gauges. NewCollector exports them to
// Prometheus, with per-handler attempts by result, outcomes, in-flight jobs and an
// attempt-duration histogram. Publisher publishes for services that do not consume.
//
// # Under bench
//
// A service built on this package can be measured by `bench run` as it is
// (workers.command in a scenario). When $BENCH_TELEMETRY is set, New applies the
// runtime settings the scenario gives ($BENCH_WORKER_SETTINGS: prefetch, concurrency,
// timeout, rate limit, burst, retry and breaker keys) over Config and over the handler
// options of the same settings, and logs what it overrode; Run reports to the runner
// the settings in force, readiness, the final outcome of every job bench published
// (before its ack: an acked job is never counted lost), redeliveries and stats. Without
// $BENCH_TELEMETRY none of this happens. If Run cannot reach the runner it returns an
// error.
package worker
