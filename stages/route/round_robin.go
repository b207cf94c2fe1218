package route

import "sync/atomic"

// roundRobin is nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer, 2012): each round every backend gains its
// weight, the richest is chosen and pays the total. Weights 5,1,1 give
// a a b a c a a, not a a a a a b c. nginx runs it under a lock per pick;
// here the sequence is computed once, at NewPool, and picks walk it with
// one atomic counter.
//
// A backend that is unusable, or loses its slow-start draw, is skipped by
// drawing a fresh position, not the next one: positions are uniform, so
// the remaining backends keep shares proportional to their weights.
type roundRobin struct {
	sched []int32 // backend indexes in smooth WRR order
	next  atomic.Uint64
}

func newRoundRobin(p *Pool) *roundRobin {
	w := make([]int64, len(p.backends))
	g := int64(0)
	for i, b := range p.backends {
		w[i] = int64(b.Weight)
		g = gcd(g, w[i])
	}
	var total int64
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > maxSchedule { // keep the schedule bounded: scale, keep ≥ 1
		t := int64(0)
		for i := range w {
			w[i] = max(1, w[i]*maxSchedule/total)
			t += w[i]
		}
		total = t
	}
	r := &roundRobin{sched: make([]int32, 0, total)}
	cur := make([]int64, len(w))
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		r.sched = append(r.sched, int32(best))
	}
	return r
}

// Pick implements Picker.
func (r *roundRobin) Pick(p *Pool, k Key) *Backend {
	n := uint64(len(r.sched))
	for range sampleTries(len(p.backends)) {
		b := p.backends[r.sched[(r.next.Add(1)-1)%n]]
		if p.Usable(b, &k) && p.acceptSlow(b, &k) {
			return b
		}
	}
	return weightedScan(p, &k)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
