package route

import "math"

// ewma is Finagle's and Linkerd's "P2C + peak EWMA": draw two backends by
// weight and keep the one with the lower expected wait, peak-EWMA latency
// × (requests in progress + 1) per unit of weight. The latency is fed by
// real responses (Attempt.End). A backend with no response yet has latency
// 0 and so gets tried at once; one response gives it a real cost.
type ewma struct{ t weightTable }

func newEWMA(p *Pool) *ewma { return &ewma{t: newWeightTable(p)} }

// Pick implements Picker.
func (e *ewma) Pick(p *Pool, k Key) *Backend {
	return twoChoices(p, &k, &e.t, func(b *Backend, w int64) float64 {
		lat := math.Float64frombits(b.ewmaBits.Load())
		return (lat + 1) * float64(b.active.Load()+1) / float64(w)
	})
}
