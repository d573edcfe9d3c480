package runner

// RunOrder is the order in which repeated runs of a matrix run its variants:
// the scenario's order in odd runs and the reverse in even ones, so that with
// two variants A and B they run A B B A A B B A ... (an ABBA design). Slow
// drift of the machine (another job starting, a thermal limit, a broker
// filling up) then weighs on both variants alike instead of on whichever
// runs second, and the last run of one is next to the first of the other.
// It returns runs slices, each a permutation of 0..variants-1.
func RunOrder(variants, runs int) [][]int {
	if variants < 0 || runs < 0 {
		return nil
	}
	out := make([][]int, runs)
	for r := range out {
		order := make([]int, variants)
		for i := range order {
			if r%2 == 0 {
				order[i] = i
			} else {
				order[i] = variants - 1 - i
			}
		}
		out[r] = order
	}
	return out
}
