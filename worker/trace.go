package worker

import "context"

// traceKey holds a traceContext set with WithTraceParent.
type traceKey struct{}

type traceContext struct{ parent, state string }

// WithTraceParent returns a context whose publishes carry the W3C Trace Context
// headers traceparent and tracestate (state may be ""). Tracing middleware (see the
// otelworker package) sets it to the span it starts, so that jobs published by a
// handler are children of that span.
func WithTraceParent(ctx context.Context, traceparent, tracestate string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceContext{traceparent, tracestate})
}

// TraceParentFrom returns the trace context that publishes with ctx carry: the one set
// by WithTraceParent, else that of the job being handled, else "".
func TraceParentFrom(ctx context.Context) (traceparent, tracestate string) {
	if tc, ok := ctx.Value(traceKey{}).(traceContext); ok {
		return tc.parent, tc.state
	}
	if j := JobFrom(ctx); j != nil && j.TraceParent != "" {
		ts, _ := j.Headers[HeaderTraceState].(string)
		return j.TraceParent, ts
	}
	return "", ""
}
