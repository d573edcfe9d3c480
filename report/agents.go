package report

// Agent is one host of a run placed on agents (`bench agent`): what it ran,
// its clock, and what became of it.
type Agent struct {
	Name   string            `json:"name"`
	Host   string            `json:"host"`
	Labels map[string]string `json:"labels,omitempty"`
	// Workers are the run-wide indices of the worker processes it ran.
	Workers []int `json:"workers,omitempty"`
	// Generator is its shard of the load, with what the ledger knows of
	// the shard's jobs; nil when it published nothing.
	Generator *AgentShard `json:"generator,omitempty"`
	// ClockOffsetMS is how far its clock was ahead of the runner's, and
	// ClockUncertaintyMS how sure that is (half the best probe's round
	// trip). Its times were corrected by the offset.
	ClockOffsetMS      float64 `json:"clock_offset_ms"`
	ClockUncertaintyMS float64 `json:"clock_uncertainty_ms"`
	// Died is set when the agent fell silent during the run; DiedAtS is
	// when it was last heard from, since the load started.
	Died    bool     `json:"died,omitempty"`
	DiedAtS *float64 `json:"died_at_s,omitempty"`
	// UnackedAtLastStats is the deliveries its workers held (prefetched or
	// in flight) in their last stats before it died: the broker requeues
	// them for the other workers.
	UnackedAtLastStats int64 `json:"unacked_at_last_stats,omitempty"`
	// MissingBatches counts relayed event batches that never arrived.
	MissingBatches int      `json:"missing_batches,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// AgentShard is a generator agent's range of sequence numbers [FirstSeq,
// FirstSeq+Jobs) and the ledger's account of it.
type AgentShard struct {
	FirstSeq    int64 `json:"first_seq"`
	Jobs        int64 `json:"jobs"`
	Published   int64 `json:"published"`
	Confirmed   int64 `json:"confirmed"`
	Unconfirmed int64 `json:"unconfirmed"`
	Finished    int64 `json:"finished"`
	Lost        int64 `json:"lost"`
}
