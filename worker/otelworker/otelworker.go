// Package otelworker traces the worker runtime's jobs with OpenTelemetry. It is a
// separate package so that the runtime itself does not depend on OpenTelemetry.
//
// Middleware runs every attempt in a consumer span whose parent is the trace context
// the job carries (the W3C traceparent header, set by whoever published it), and
// makes what the handler publishes with its context carry the attempt's span. The
// runtime's transaction ID (TID) is unchanged by it and recorded on the span.
//
//	w.Use(otelworker.Middleware())
//
// Inject makes publishes from outside a handler (an HTTP request's, say) carry the
// context's current span:
//
//	err := publisher.PublishTask(otelworker.Inject(r.Context()), "billing.invoice.send", body)
package otelworker

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/benchmq/bench/worker"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/benchmq/bench/worker/otelworker"

// Option configures Middleware.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
}

// WithTracerProvider sets the tracer provider; by default the global one
// (otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// traceContext reads and writes only the W3C traceparent and tracestate headers,
// which are the ones the runtime carries.
var traceContext = propagation.TraceContext{}

// Middleware returns a worker.Middleware that runs each attempt in a span named
// "<queue> process" (kind consumer), child of the job's traceparent, with the
// messaging attributes, the TID and the attempt; a failed attempt records its
// error. Publishes made with the handler's context carry the span.
func Middleware(opts ...Option) worker.Middleware {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	tracer := c.tp.Tracer(ScopeName)
	return func(next worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, job *worker.Job) error {
			carrier := propagation.MapCarrier{}
			if job.TraceParent != "" {
				carrier[worker.HeaderTraceParent] = job.TraceParent
				if ts, ok := job.Headers[worker.HeaderTraceState].(string); ok {
					carrier[worker.HeaderTraceState] = ts
				}
			}
			ctx = traceContext.Extract(ctx, carrier)
			ctx, span := tracer.Start(ctx, job.Queue+" process",
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.system", "rabbitmq"),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", job.Queue),
					attribute.String("messaging.message.id", job.ID),
					attribute.String("bench.job.name", job.Name),
					attribute.String("bench.tid", job.TID),
					attribute.Int("bench.attempt", job.Attempt),
					attribute.Bool("bench.redelivered", job.Redelivered),
				))
			defer span.End()
			err := next(Inject(ctx), job)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}

// Inject returns ctx set so that the runtime's publishes with it carry the trace
// context of ctx's current span (worker.WithTraceParent). Without a valid span, ctx
// is returned as it is.
func Inject(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return worker.WithTraceParent(ctx, carrier[worker.HeaderTraceParent], carrier[worker.HeaderTraceState])
}
