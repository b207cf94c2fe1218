package route

import "math"

// sourceIP keeps a client on one backend by its source address (nginx's
// ip_hash, HAProxy's balance source) with weighted rendezvous hashing
// (Thaler and Ravishankar 1998; weights by Schindelhauer and Schomaker's
// logarithmic method, 2005): every backend scores -ln(u)/weight, u being a
// hash of (address, backend) in (0, 1), and the lowest usable score wins.
// Removing a backend moves only its own clients; shares follow weights.
// O(n) per pick. Slow start does not apply.
type sourceIP struct{}

// Pick implements Picker.
func (sourceIP) Pick(p *Pool, k Key) *Backend {
	var h uint64
	if k.Src.IsValid() {
		h = hashAddr(&k)
	} else {
		h = uint64(randN(math.MaxInt))
	}
	var best *Backend
	if p.sameWeights {
		// Equal weights: the lowest -ln(u)/w is the highest u, so compare
		// the hashes themselves and skip the logarithm (~5× faster).
		var bestH uint64
		for _, b := range p.backends {
			if h := mix64(h ^ b.seed); p.Usable(b, &k) && (best == nil || h > bestH) {
				best, bestH = b, h
			}
		}
		return best
	}
	bestScore := math.Inf(1)
	for _, b := range p.backends {
		if !p.Usable(b, &k) {
			continue
		}
		u := float64(mix64(h^b.seed)>>11+1) / (1 << 53) // (0, 1]
		if s := -math.Log(u) / float64(b.Weight); s < bestScore {
			best, bestScore = b, s
		}
	}
	return best
}
