package route

import (
	"math"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Health bits of Backend.state.
const (
	stateDown    uint32 = 1 << iota // active health checks say down
	stateEjected                    // outlier detection ejected it
)

// Backend is one member of a pool: its configuration, and its runtime state
// in atomics, read lock-free on the pick path.
type Backend struct {
	// Address is "host:port".
	Address string
	// Protocol is tcp, h1, h2, h3 or udp.
	Protocol string
	// Weight is the configured weight, 1..1000.
	Weight int
	// Opts is the upstream's slot (TLS settings and the like); route never
	// reads it.
	Opts any

	pool  *Pool
	index int
	// id is the sticky cookie value naming this backend, and setCookie the
	// whole Set-Cookie value, both built once.
	id, setCookie string
	// seed is the hash of the backend's name, for rendezvous hashing.
	seed uint64

	active atomic.Int64 // requests between Begin and End
	conns  atomic.Int64 // open connections, reported by the upstream
	// connsHome is the backend whose connection count this one shares: the
	// same address in the pool a reload replaced, whose connections live
	// on and are closed (counted down) there. Nil: its own.
	connsHome *Backend
	pending   atomic.Int64  // requests waiting for a connection
	requests  atomic.Uint64 // Begin calls, ever (feeds the retry budget)

	state     atomic.Uint32 // stateDown | stateEjected
	probed    atomic.Bool   // an active check has judged it (kept on reload)
	slowSince atomic.Int64  // unix nanos slow start began; 0 when not slow

	ewmaBits  atomic.Uint64 // float64 nanoseconds, peak EWMA latency
	ewmaStamp atomic.Int64  // unix nanos of the last EWMA update

	circuitOpen *metrics.Counter
}

// Index is the backend's position in its pool, stable for the pool's life.
func (b *Backend) Index() int { return b.index }

// Pool returns the pool the backend belongs to.
func (b *Backend) Pool() *Pool { return b.pool }

// Healthy reports whether active checks say up and outlier detection has
// not ejected the backend.
func (b *Backend) Healthy() bool { return b.state.Load() == 0 }

// FirstProbe reports whether no active check has judged the backend yet,
// and records that one now has. The first verdict of a backend's life is
// applied at once (no fall hysteresis), so a backend dead at boot or when
// added by a reload never serves; later ones need rise or fall in a row.
func (b *Backend) FirstProbe() bool { return !b.probed.Swap(true) }

// Down reports whether active health checks marked the backend down.
func (b *Backend) Down() bool { return b.state.Load()&stateDown != 0 }

// Ejected reports whether outlier detection ejected the backend.
func (b *Backend) Ejected() bool { return b.state.Load()&stateEjected != 0 }

// Full reports whether a circuit breaker of the backend is open: active
// requests at max_requests or pending requests at max_pending, or, for an
// L4 backend (where a connection is the request), connections at
// max_connections.
func (b *Backend) Full() bool {
	c := &b.pool.circuit
	if c.maxRequests > 0 && b.active.Load() >= c.maxRequests {
		return true
	}
	if c.maxPending > 0 && b.pending.Load() >= c.maxPending {
		return true
	}
	if c.maxConns > 0 && b.l4() && b.connCount().Load() >= c.maxConns {
		return true
	}
	return false
}

// Available is the one predicate every picker honours: healthy and no
// circuit breaker open. The pool's panic mode (too few healthy backends)
// is applied on top by the pool, not here.
func (b *Backend) Available() bool { return b.Healthy() && !b.Full() }

// l4 backends are relayed a connection at a time (a QUIC Mode B
// connection too), so max_connections is their breaker.
func (b *Backend) l4() bool {
	return b.Protocol == "tcp" || b.Protocol == "udp" || b.Protocol == "quic"
}

// SlowStarting reports whether b is in slow start (new to its pool, or
// back from down, and within the pool's slow_start_ms).
func (b *Backend) SlowStarting() bool { return b.slowSince.Load() != 0 }

// Active returns the number of requests in progress on the backend.
func (b *Backend) Active() int64 { return b.active.Load() }

// Conns returns the number of open connections the upstream reported.
func (b *Backend) Conns() int64 { return b.connCount().Load() }

// connCount is the counter of b's open connections, shared across
// reloads.
func (b *Backend) connCount() *atomic.Int64 {
	if b.connsHome != nil {
		return &b.connsHome.conns
	}
	return &b.conns
}

// Pending returns the number of requests waiting for a connection.
func (b *Backend) Pending() int64 { return b.pending.Load() }

// ConnOpen counts one more open connection to the backend (least_conn
// reads the count). It returns false, and counts circuit_open_total, when
// max_connections were already open: the caller should then not open it
// (or close it at once). Every call, true or false, must be paired with
// one ConnClosed, so that a caller that ignores the answer still keeps the
// count balanced.
func (b *Backend) ConnOpen() bool {
	max := b.pool.circuit.maxConns
	if n := b.connCount().Add(1); max > 0 && n > max {
		b.circuitOpen.Inc()
		return false
	}
	return true
}

// ConnClosed reports that a connection counted by ConnOpen closed (or was
// never opened because ConnOpen said false).
func (b *Backend) ConnClosed() {
	if c := b.connCount(); c.Add(-1) < 0 {
		c.Add(1)
		panic("route: ConnClosed without ConnOpen")
	}
}

// PendingBegin counts a request that waits for a connection. It returns
// false (and counts circuit_open_total) when max_pending are already
// waiting: answer 503. Each true must be paired with one PendingEnd.
func (b *Backend) PendingBegin() bool {
	max := b.pool.circuit.maxPending
	for {
		n := b.pending.Load()
		if max > 0 && n >= max {
			b.circuitOpen.Inc()
			return false
		}
		if b.pending.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// PendingEnd reports that a request counted by PendingBegin got its
// connection or gave up.
func (b *Backend) PendingEnd() {
	if b.pending.Add(-1) < 0 {
		b.pending.Add(1)
		panic("route: PendingEnd without PendingBegin")
	}
}

// Latency returns the backend's peak-EWMA latency in nanoseconds (0 before
// the first response).
func (b *Backend) Latency() float64 { return math.Float64frombits(b.ewmaBits.Load()) }

// observeLatency folds one response time into the peak EWMA (Finagle's
// PeakEwma): a sample above the average replaces it at once, so a backend
// that turns slow is avoided immediately; below, it decays towards the
// sample with time constant ewmaDecayNanos.
func (b *Backend) observeLatency(now int64, rtt float64) {
	for {
		oldBits := b.ewmaBits.Load()
		old := math.Float64frombits(oldBits)
		prev := b.ewmaStamp.Load()
		var v float64
		if rtt > old || prev == 0 {
			v = rtt
		} else {
			w := math.Exp(-float64(max(now-prev, 0)) / ewmaDecayNanos)
			v = old*w + rtt*(1-w)
		}
		if b.ewmaBits.CompareAndSwap(oldBits, math.Float64bits(v)) {
			b.ewmaStamp.Store(now)
			return
		}
	}
}
