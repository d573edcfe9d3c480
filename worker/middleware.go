package worker

import "fmt"

// Middleware wraps a handler, e.g. for tracing, logging or metrics. It sees every
// attempt: the context it gets carries the attempt's deadline and the Job, and what
// it returns is the attempt's outcome. Retries, the breaker, timeouts and the
// recovery function stay the runtime's: a middleware cannot skip them.
type Middleware func(HandlerFunc) HandlerFunc

// Use adds middleware for every handler of the worker, registered before or after
// Use; the first is the outermost. It must be called before Run.
func (w *Worker) Use(mw ...Middleware) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return &ConfigError{Op: "use middleware", Err: fmt.Errorf("worker already running")}
	}
	for i, m := range mw {
		if m == nil {
			return &ConfigError{Op: "use middleware", Err: fmt.Errorf("middleware %d: nil", i)}
		}
	}
	w.middleware = append(w.middleware, mw...)
	return nil
}

// wrap builds a handler's call chain: the worker's middleware around the handler's
// own around its function.
func wrap(fn HandlerFunc, worker, own []Middleware) HandlerFunc {
	for i := len(own) - 1; i >= 0; i-- {
		fn = own[i](fn)
	}
	for i := len(worker) - 1; i >= 0; i-- {
		fn = worker[i](fn)
	}
	return fn
}
