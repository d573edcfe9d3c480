// Package payments is a tiny payments service: the real HTTP dependency of
// the orders example, which bench puts behind a proxy to slow it down.
package payments

import (
	"encoding/json"
	"net/http"
	"time"
)

// Charge is a payment request.
type Charge struct {
	Order  int64 `json:"order"`
	Amount int64 `json:"amount"`
}

// Handler serves POST /charge, answering after latency; the request's
// context ends the wait early (the caller gave up).
func Handler(latency time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charge", func(w http.ResponseWriter, r *http.Request) {
		var c Charge
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Amount <= 0 {
			http.Error(w, "bad charge", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"order": c.Order, "status": "charged"})
	})
	return mux
}
