package route

// p2c is the power of two choices (Mitzenmacher 2001): draw two backends by
// weight, keep the one with fewer requests in progress per unit of weight.
// O(1), and nearly as good as scanning for the least loaded. Ties keep the
// first draw, so idle shares follow weights.
type p2c struct{ t weightTable }

func newP2C(p *Pool) *p2c { return &p2c{t: newWeightTable(p)} }

// Pick implements Picker.
func (c *p2c) Pick(p *Pool, k Key) *Backend {
	return twoChoices(p, &k, &c.t, func(b *Backend, w int64) float64 {
		return float64(b.active.Load()) / float64(w)
	})
}

// twoChoices draws two distinct usable backends by weight and returns the
// one with the lower cost (cost gets the effective weight).
func twoChoices(p *Pool, k *Key, t *weightTable, cost func(*Backend, int64) float64) *Backend {
	tries := sampleTries(len(p.backends))
	a := t.sampleUsable(p, k, tries)
	if a == nil || len(p.backends) == 1 {
		return a
	}
	var b *Backend
	for range tries {
		if c := p.backends[t.sample()]; c != a && p.Usable(c, k) && p.acceptSlow(c, k) {
			b = c
			break
		}
	}
	if b == nil {
		return a
	}
	if cost(b, p.weight(b, k)) < cost(a, p.weight(a, k)) {
		return b
	}
	return a
}
