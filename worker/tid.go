package worker

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
)

// ctxKey holds either a TID string (WithTID) or the *Job being handled.
type ctxKey struct{}

// WithTID returns a context whose publishes carry tid.
func WithTID(ctx context.Context, tid string) context.Context {
	return context.WithValue(ctx, ctxKey{}, tid)
}

// TIDFrom returns the transaction ID of ctx: the one set by WithTID or of the job being
// handled, or "" if there is none (a publish then starts a new transaction).
func TIDFrom(ctx context.Context) string {
	switch v := ctx.Value(ctxKey{}).(type) {
	case string:
		return v
	case *Job:
		return v.TID
	}
	return ""
}

// jobContext is a handler's context. It lives inside its Job, so a delivery costs one
// allocation for both instead of a Job and a context.WithValue.
type jobContext struct {
	context.Context
	job *Job
}

func (c *jobContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c.job
	}
	return c.Context.Value(key)
}

// JobFrom returns the job a handler's context belongs to, or nil.
func JobFrom(ctx context.Context) *Job {
	j, _ := ctx.Value(ctxKey{}).(*Job)
	return j
}

// Logger returns a logger carrying the context's TID, and inside a handler the job's
// name, ID and attempt, on top of the worker's logger (slog.Default() outside one).
func Logger(ctx context.Context) *slog.Logger {
	if j := JobFrom(ctx); j != nil {
		return j.w.log.With("tid", j.TID, "job", j.Name, "id", j.ID, "attempt", j.Attempt)
	}
	if tid := TIDFrom(ctx); tid != "" {
		return slog.Default().With("tid", tid)
	}
	return slog.Default()
}

// newID returns a UUIDv7: time-ordered, so IDs sort by creation in logs and indexes.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
