package route

import "sort"

// weightTable samples backends in proportion to their configured weights:
// cumulative sums and a binary search, O(log n), no allocation.
type weightTable struct {
	cum   []int64 // cum[i] = sum of weights of backends[0..i]
	total int64
}

func newWeightTable(p *Pool) weightTable {
	t := weightTable{cum: make([]int64, len(p.backends))}
	for i, b := range p.backends {
		t.total += int64(b.Weight)
		t.cum[i] = t.total
	}
	return t
}

// sample returns a backend index drawn by configured weight.
func (t *weightTable) sample() int {
	r := int64(randN(int(t.total)))
	return sort.Search(len(t.cum), func(i int) bool { return t.cum[i] > r })
}

// sampleUsable draws by weight until it finds a usable backend that also
// passes its slow-start draw. A few draws nearly always do (each succeeds
// with probability ≥ the usable share of the weight); after tries of them it
// falls back to weightedScan, which is exact but O(n).
func (t *weightTable) sampleUsable(p *Pool, k *Key, tries int) *Backend {
	for range tries {
		b := p.backends[t.sample()]
		if p.Usable(b, k) && p.acceptSlow(b, k) {
			return b
		}
	}
	return weightedScan(p, k)
}

// weightedScan draws one usable backend by effective weight in one pass
// (weighted reservoir sampling).
func weightedScan(p *Pool, k *Key) *Backend {
	var pick *Backend
	var sum int64
	for _, b := range p.backends {
		if !p.Usable(b, k) {
			continue
		}
		w := p.weight(b, k)
		sum += w
		if int64(randN(int(sum))) < w {
			pick = b
		}
	}
	return pick
}

// sampleTries is how many weighted draws a sampling picker makes before
// scanning: enough that the scan is rare unless most weight is unusable.
func sampleTries(n int) int { return min(2*n+2, 16) }
