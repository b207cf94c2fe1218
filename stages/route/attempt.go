package route

import (
	"sync/atomic"
	"time"
)

// Outcome is how one try on a backend ended.
type Outcome struct {
	// Status is the backend's response status (0 when none arrived).
	Status int
	// Err is the exchange's error, nil when a response arrived whole. A
	// *DialError counts as a connect failure; a context.Canceled caused by
	// the client is no fault of the backend and should not be reported as
	// one (pass Err nil and Status 0: the try is then neutral).
	Err error
	// Latency is the time to the response head; 0 lets End measure it
	// from Begin.
	Latency time.Duration
}

// Observer receives every Outcome of the pool's backends; stages/health's
// outlier detection is one. It runs on the request path and must not
// block.
type Observer interface {
	Observe(b *Backend, o Outcome)
}

// Attempt is one try of a request on a backend, from Begin to End.
type Attempt struct {
	b     *Backend
	start time.Time
	done  atomic.Bool
}

// Begin counts a request in progress on b (least_request, p2c, ewma and the
// max_requests breaker read it) and returns the Attempt whose End must be
// called exactly once.
//
// Begin does not check the breakers: L4 relays, where Pick's check is
// enough, use it; the HTTP path uses Pool.PickBegin, which reserves the
// place atomically.
func (b *Backend) Begin() *Attempt {
	b.active.Add(1)
	b.requests.Add(1)
	return &Attempt{b: b, start: time.Now()}
}

// tryBegin is Begin unless max_requests are already active: then nil.
func (b *Backend) tryBegin() *Attempt {
	max := b.pool.circuit.maxRequests
	for {
		n := b.active.Load()
		if max > 0 && n >= max {
			return nil
		}
		if b.active.CompareAndSwap(n, n+1) {
			break
		}
	}
	b.requests.Add(1)
	return &Attempt{b: b, start: time.Now()}
}

// Backend returns the attempt's backend.
func (a *Attempt) Backend() *Backend { return a.b }

// Start returns when Begin was called.
func (a *Attempt) Start() time.Time { return a.start }

// End closes the attempt: it stops counting the request, feeds the EWMA
// latency (responses only) and the pool's observer (outlier detection).
// Calls after the first do nothing.
func (a *Attempt) End(o Outcome) {
	if !a.done.CompareAndSwap(false, true) {
		return
	}
	b := a.b
	b.active.Add(-1)
	if o.Latency == 0 {
		o.Latency = time.Since(a.start)
	}
	if o.Err == nil && o.Status != 0 {
		b.observeLatency(a.start.UnixNano()+int64(o.Latency), float64(o.Latency))
	}
	if obs := b.pool.observer.Load(); obs != nil {
		(*obs).Observe(b, o)
	}
}

// SetObserver installs the pool's outcome observer (nil removes it).
func (p *Pool) SetObserver(o Observer) {
	if o == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&o)
}
