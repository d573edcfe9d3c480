// Package loadgen is the harness's open-model load generator: it publishes jobs
// at their intended send times whether or not the broker and the workers keep up,
// with pipelined publisher confirms, and accounts for every publish.
//
// # Schedule
//
// Every job has an intended send time, computed on demand by a Schedule (O(1)
// memory). Phases run in order. Steady and ramp phases last exactly their
// scheduled length; a spike's jobs are all intended at its start and the spike
// ends when its last job was sent, so the phase after it starts then. Jobs carry
// their intended time (HeaderIntended), and end-to-end latency is measured from
// it, so a generator or broker that falls behind shows up in the latencies
// instead of hiding them (no coordinated omission).
//
// A steady or ramp job sent more than Config.LateThreshold after its intended
// time is a late send (Stats.LateSends, worst in Stats.LateMax); the runner calls
// a run harness-bound when more than 1% of those phases' jobs were late. Spike
// jobs are intended all at once and never count as late.
//
// # Publishing
//
// Jobs go straight through amqp091-go on one confirm-mode channel, with at most
// Config.Window publishes awaiting their confirm. Confirms are matched to jobs by
// delivery tag in a ring buffer, and the message (headers table, body) is reused,
// so the generator costs about what a bare publisher sending the same headers
// does. Every job carries the runtime's headers (worker.HeaderTID with TID(run,
// seq), worker.HeaderAttempt 1, worker.HeaderFirstPublished), HeaderSeq and
// HeaderIntended; its message ID is its TID and it is persistent.
//
// # Faults
//
// When the connection or channel dies, every publish in flight is reported
// unconfirmed and never republished: a duplicate would be worse than an honest
// unconfirmed count. The generator reconnects with jittered backoff from 100 ms
// to 2 s until its context ends, then carries on with the next jobs; those whose
// time passed meanwhile go out late and are counted so. While the broker blocks
// the connection (connection.blocked, a resource alarm) publishing waits, and
// Stats reports it.
package loadgen
