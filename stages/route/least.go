package route

// leastLoaded scans every usable backend and returns the one with the
// lowest load per unit of effective weight (nginx's least_conn rule:
// load_a × weight_b < load_b × weight_a). Ties, as when nothing is in
// flight, go to a weighted draw among the tied, so shares follow weights
// both idle and under load.
func leastLoaded(p *Pool, k *Key, load func(*Backend) int64) *Backend {
	var best *Backend
	var bestLoad, bestW, tieW int64
	for _, b := range p.backends {
		if !p.Usable(b, k) {
			continue
		}
		l, w := load(b), p.weight(b, k)
		switch {
		case best == nil || l*bestW < bestLoad*w:
			best, bestLoad, bestW, tieW = b, l, w, w
		case l*bestW == bestLoad*w:
			tieW += w
			if int64(randN(int(tieW))) < w {
				best, bestLoad, bestW = b, l, w
			}
		}
	}
	return best
}
