package loadgen

import (
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"strings"
)

// TID returns the transaction ID of job seq of run runID: a version 8 UUID whose
// first half is a hash of runID and whose second half is seq. It is deterministic,
// so the runner can recompute any job's TID from its sequence number instead of
// storing it; it is unique per (runID, seq) for seq < 2⁶².
func TID(runID string, seq int64) string {
	var buf [36]byte
	formatTID(&buf, runHash(runID), seq)
	return string(buf[:])
}

func runHash(runID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(runID)) // hash.Hash never fails
	return h.Sum64()
}

// formatTID writes the UUID text of (hash, seq) into buf without allocating.
func formatTID(buf *[36]byte, hash uint64, seq int64) {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], hash)
	binary.BigEndian.PutUint64(u[8:], uint64(seq))
	u[6] = u[6]&0x0f | 0x80 // version 8: custom
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	const hexdigits = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexdigits[b>>4], hexdigits[b&0x0f]
		j += 2
	}
}

// ParseTID returns the sequence number of a TID made by TID(runID, seq), and
// false for any other string: a TID of another run, or not one of bench's.
// It is how the runner maps the completion events of a worker it cannot see
// into (black-box mode) to their jobs. Letter case does not matter.
func ParseTID(runID, tid string) (int64, bool) {
	if len(tid) != 36 {
		return 0, false
	}
	tid = strings.ToLower(tid)
	var want [36]byte
	formatTID(&want, runHash(runID), 0)
	if tid[:19] != string(want[:19]) || tid[23] != '-' {
		return 0, false
	}
	var u [8]byte
	if _, err := hex.Decode(u[:], []byte(tid[19:23]+tid[24:])); err != nil || u[0]&0xc0 != 0x80 {
		return 0, false
	}
	u[0] &= 0x3f
	return int64(binary.BigEndian.Uint64(u[:])), true
}
