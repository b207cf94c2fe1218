package route

// random picks a usable backend at random in proportion to its weight
// (scaled by slow start).
type random struct{ t weightTable }

func newRandom(p *Pool) *random { return &random{t: newWeightTable(p)} }

// Pick implements Picker.
func (r *random) Pick(p *Pool, k Key) *Backend {
	return r.t.sampleUsable(p, &k, sampleTries(len(p.backends)))
}
