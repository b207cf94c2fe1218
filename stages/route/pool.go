package route

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
)

// Picker is one balancing algorithm. Pick returns a backend the pool may
// use for k, or nil when it finds none. Implementations skip backends that
// are not usable (Pool.Usable: Backend.Available, widened by panic mode),
// keep their state in atomics and take no lock.
type Picker interface {
	Pick(p *Pool, k Key) *Backend
}

// Key is what a pick may depend on.
type Key struct {
	// Src is the client's address (zero when unknown).
	Src netip.Addr
	// Head is the request head; nil for L4 traffic.
	Head *frames.Head
	// Hash, when non-zero, is what ring_hash and maglev hash instead of
	// the pool's hash_key: an L4 flow's own key (QUIC passthrough hashes
	// the client's and the listener's address and port).
	Hash uint64

	// tried marks backends an earlier try of this request used (bit
	// index&63), so a retry goes to another backend when one is usable.
	tried uint64

	// Filled by Pool.Pick for the picker.
	now    int64 // unix nanos, set only while some backend slow-starts
	panic  bool  // too few healthy backends: route to all
	nSlow  int32
	filled bool
}

// Pool is a named group of backends with its picker, circuit-breaker
// limits, slow-start duration, panic threshold and retry policy. It is
// built once per config generation by NewPool and is safe for concurrent
// use.
type Pool struct {
	name     string
	backends []*Backend
	picker   Picker
	algo     string
	hashKey  hashKey
	retry    *RetryPolicy
	sticky   *stickyConf
	byID     map[string]*Backend

	sameWeights    bool  // every backend has the same weight
	slowStart      int64 // nanos; 0 = off
	panicThreshold int   // percent; 0 = off
	circuit        struct{ maxConns, maxPending, maxRequests int64 }

	observer atomic.Pointer[Observer]
	onHealth atomic.Pointer[func(*Pool)] // SetHealthHook

	nUnhealthy atomic.Int32 // backends down or ejected
	nEjected   atomic.Int32
	nSlow      atomic.Int32
}

// Options are NewPool's runtime inputs beyond the config.
type Options struct {
	// Metrics is where the pool's metrics go; nil means the default set
	// (metrics.GetDefaultSet, what /metrics serves).
	Metrics *metrics.Set
	// Previous is the pool this one replaces on reload, if any: backends
	// present in both keep their health and latency; backends new to the
	// pool start in slow start.
	Previous *Pool
}

// NewPool builds the runtime pool from a validated config (conf's
// setDefaults and validate have run, e.g. via conf.Pool.Prepare).
func NewPool(cfg conf.Pool, o Options) (*Pool, error) {
	if len(cfg.Backends) == 0 {
		return nil, fmt.Errorf("route: pool %q has no backends", cfg.Name)
	}
	set := o.Metrics
	if set == nil {
		set = metrics.GetDefaultSet()
	}
	p := &Pool{
		name:      cfg.Name,
		algo:      cfg.Algorithm,
		slowStart: int64(cfg.SlowStartMs) * int64(time.Millisecond),
	}
	if p.algo == "" {
		p.algo = conf.DefaultAlgorithm
	}
	if cfg.PanicThresholdPercent != nil {
		p.panicThreshold = *cfg.PanicThresholdPercent
	} else {
		p.panicThreshold = conf.DefaultPanicThresholdPercent
	}
	if c := cfg.Circuit; c != nil {
		p.circuit.maxConns = int64(c.MaxConnections)
		p.circuit.maxPending = int64(c.MaxPending)
		p.circuit.maxRequests = int64(c.MaxRequests)
	}
	var err error
	if p.hashKey, err = parseHashKey(cfg.HashKey); err != nil {
		return nil, err
	}
	if p.algo == "sticky" {
		p.sticky = newStickyConf(cfg.Sticky)
	}
	p.byID = make(map[string]*Backend, len(cfg.Backends))
	for i, bc := range cfg.Backends {
		w := bc.Weight
		if w <= 0 {
			w = conf.DefaultBackendWeight
		}
		proto := bc.Protocol
		if proto == "" {
			proto = conf.DefaultBackendProtocol
		}
		b := &Backend{Address: bc.Address, Protocol: proto, Weight: w, pool: p, index: i}
		b.id = backendID(cfg.Name, proto, bc.Address)
		b.seed = hashString(proto + "://" + bc.Address)
		if p.sticky != nil {
			b.setCookie = p.sticky.cookieFor(b.id)
		}
		b.circuitOpen = circuitOpenCounter(set, cfg.Name, bc.Address)
		p.byID[b.id] = b
		p.backends = append(p.backends, b)
	}
	p.sameWeights = true
	for _, b := range p.backends {
		p.sameWeights = p.sameWeights && b.Weight == p.backends[0].Weight
	}
	p.retry = newRetryPolicy(p, cfg.Retry, set)
	if p.picker, err = newPicker(p, p.algo); err != nil {
		return nil, err
	}
	if o.Previous != nil {
		p.inherit(o.Previous)
	}
	return p, nil
}

// newPicker builds the picker named by algo for p.
func newPicker(p *Pool, algo string) (Picker, error) {
	switch algo {
	case "round_robin":
		return newRoundRobin(p), nil
	case "least_conn":
		return leastConn{}, nil
	case "least_request":
		return leastRequest{}, nil
	case "random":
		return newRandom(p), nil
	case "p2c":
		return newP2C(p), nil
	case "ewma":
		return newEWMA(p), nil
	case "ring_hash":
		return newRingHash(p), nil
	case "maglev":
		return newMaglev(p), nil
	case "source_ip":
		return sourceIP{}, nil
	case "sticky":
		fb, err := newPicker(p, p.sticky.fallback)
		if err != nil {
			return nil, err
		}
		return &sticky{fallback: fb}, nil
	}
	return nil, fmt.Errorf("route: pool %q: unknown algorithm %q", p.name, algo)
}

// inherit carries health, latency, slow start and the count of open
// connections over from the pool this one replaces, and puts backends new
// to the pool in slow start.
func (p *Pool) inherit(prev *Pool) {
	old := make(map[string]*Backend, len(prev.backends))
	for _, b := range prev.backends {
		old[b.Protocol+"://"+b.Address] = b
	}
	now := time.Now().UnixNano()
	for _, b := range p.backends {
		ob, ok := old[b.Protocol+"://"+b.Address]
		if !ok {
			p.beginSlowStart(b, now)
			continue
		}
		if ob.Down() {
			p.SetDown(b, true)
		}
		b.connsHome = ob
		if ob.connsHome != nil {
			b.connsHome = ob.connsHome
		}
		b.probed.Store(ob.probed.Load())
		b.ewmaBits.Store(ob.ewmaBits.Load())
		b.ewmaStamp.Store(ob.ewmaStamp.Load())
		if s := ob.slowSince.Load(); s != 0 && p.slowStart > 0 {
			b.slowSince.Store(s)
			p.nSlow.Add(1)
		}
	}
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Algorithm returns the pool's algorithm keyword.
func (p *Pool) Algorithm() string { return p.algo }

// Backends returns the pool's backends, in config order. The slice must not
// be modified.
func (p *Pool) Backends() []*Backend { return p.backends }

// Retry returns the pool's retry policy.
func (p *Pool) Retry() *RetryPolicy { return p.retry }

// Pick chooses a backend for k by the pool's algorithm. It returns
// ErrNoBackend when no backend is healthy, and ErrCircuitOpen when healthy
// ones exist but all are past a circuit-breaker limit (counted in
// circuit_open_total).
func (p *Pool) Pick(k Key) (*Backend, error) {
	if !p.fill(&k) {
		return nil, ErrNoBackend
	}
	if b := p.picker.Pick(p, k); b != nil {
		return b, nil
	}
	return nil, p.whyNone(&k)
}

// PickBegin picks a backend for k and begins an attempt on it, reserving
// a place under max_requests atomically: concurrent picks cannot overshoot
// the breaker. Backends excluded by Key.Exclude are avoided while another
// is usable, and used again when none is (a pool of one still retries).
// Errors are Pick's.
func (p *Pool) PickBegin(k Key) (*Backend, *Attempt, error) {
	var last *Backend
	for range pickBeginTries {
		b, err := p.Pick(k)
		if err != nil && k.tried != 0 {
			k.tried = 0
			b, err = p.Pick(k)
		}
		if err != nil {
			return nil, nil, err
		}
		if a := b.tryBegin(); a != nil {
			return b, a, nil
		}
		last = b // lost the race for its last place: pick again
	}
	last.circuitOpen.Inc()
	return nil, nil, ErrCircuitOpen
}

// Exclude marks b as tried by this request: PickBegin prefers others.
func (k *Key) Exclude(b *Backend) { k.tried |= 1 << (uint(b.index) & 63) }

// fill prepares the per-pick state of k; it returns false when no backend
// can serve (none healthy, panic mode off).
func (p *Pool) fill(k *Key) bool {
	k.filled = true
	n := int32(len(p.backends))
	healthy := n - p.nUnhealthy.Load()
	if healthy < n && p.panicThreshold > 0 && int(healthy)*100 < p.panicThreshold*int(n) {
		k.panic = true
	} else if healthy == 0 {
		return false
	}
	if k.nSlow = p.nSlow.Load(); k.nSlow > 0 {
		k.now = time.Now().UnixNano()
	}
	return true
}

// whyNone tells a pool with no usable backend (ErrNoBackend) from one whose
// usable backends are all full (ErrCircuitOpen, counted per backend).
func (p *Pool) whyNone(k *Key) error {
	err := ErrNoBackend
	for _, b := range p.backends {
		if (k.panic || b.Healthy()) && b.Full() {
			b.circuitOpen.Inc()
			err = ErrCircuitOpen
		}
	}
	return err
}

// Usable reports whether a picker may return b for k: not excluded by
// Key.Exclude, and Available, or in panic mode merely not full.
func (p *Pool) Usable(b *Backend, k *Key) bool {
	if k.tried != 0 && k.tried&(1<<(uint(b.index)&63)) != 0 {
		return false
	}
	if k.panic {
		return !b.Full()
	}
	return b.Available()
}

// scale returns b's slow-start factor in weightScale units: weightScale
// when b is not slow-starting, else a linear ramp from slowStartMinScale.
// A finished ramp clears b's slow state.
func (p *Pool) scale(b *Backend, k *Key) int64 {
	if k.nSlow == 0 {
		return weightScale
	}
	since := b.slowSince.Load()
	if since == 0 {
		return weightScale
	}
	el := k.now - since
	if el >= p.slowStart {
		if b.slowSince.CompareAndSwap(since, 0) {
			p.nSlow.Add(-1)
		}
		return weightScale
	}
	return max(slowStartMinScale, el*weightScale/p.slowStart)
}

// weight returns b's effective weight for k (weight × slow-start scale).
func (p *Pool) weight(b *Backend, k *Key) int64 { return int64(b.Weight) * p.scale(b, k) }

// acceptSlow admits b with probability scale/weightScale: pickers that
// sample by configured weight use it to apply slow start.
func (p *Pool) acceptSlow(b *Backend, k *Key) bool {
	s := p.scale(b, k)
	return s >= weightScale || int64(randN(weightScale)) < s
}

// SetDown records an active health check verdict. It returns whether the
// verdict changed the backend's state. A backend coming back starts slow
// start.
func (p *Pool) SetDown(b *Backend, down bool) bool {
	if down {
		return p.setState(b, stateDown, 0)
	}
	return p.setState(b, 0, stateDown)
}

// TryEject ejects b unless it is already ejected or limit backends already
// are; it returns whether b was ejected now.
func (p *Pool) TryEject(b *Backend, limit int) bool {
	for {
		n := p.nEjected.Load()
		if int(n) >= limit {
			return false
		}
		if p.nEjected.CompareAndSwap(n, n+1) {
			break
		}
	}
	if !p.setState(b, stateEjected, 0) {
		p.nEjected.Add(-1)
		return false
	}
	return true
}

// Uneject returns an ejected backend to the pool; it returns whether b was
// ejected.
func (p *Pool) Uneject(b *Backend) bool {
	if !p.setState(b, 0, stateEjected) {
		return false
	}
	p.nEjected.Add(-1)
	return true
}

// Ejected returns how many backends are ejected now.
func (p *Pool) Ejected() int { return int(p.nEjected.Load()) }

// Panicking reports whether too few backends are healthy, so that picks go
// to all of them.
func (p *Pool) Panicking() bool {
	var k Key
	p.fill(&k)
	return k.panic
}

// setState sets and clears state bits of b, keeping the pool's unhealthy
// count in step; it returns whether the state changed.
func (p *Pool) setState(b *Backend, set, clr uint32) bool {
	for {
		old := b.state.Load()
		nw := old&^clr | set
		if nw == old {
			return false
		}
		if !b.state.CompareAndSwap(old, nw) {
			continue
		}
		switch {
		case old == 0 && nw != 0:
			p.nUnhealthy.Add(1)
			p.healthChanged()
		case old != 0 && nw == 0:
			p.nUnhealthy.Add(-1)
			p.beginSlowStart(b, time.Now().UnixNano())
			p.healthChanged()
		}
		return true
	}
}

// SetHealthHook installs fn, called each time a backend of the pool turns
// healthy or unhealthy (Backend.Healthy flips: down or up by active checks,
// ejected or returned by outlier detection). A change of bits that leaves
// Healthy as it was (a down backend also ejected) does not call it. fn runs
// in the goroutine that changed the state (a health probe, an outlier sweep
// or a request's End), after the change is visible; it must not block, and
// callers coalesce bursts themselves (the XDP fast path kicks a channel of
// one). nil removes the hook. Pools built by NewPool start without one, so
// the health a reload carries over (Options.Previous) calls nothing.
func (p *Pool) SetHealthHook(fn func(*Pool)) {
	if fn == nil {
		p.onHealth.Store(nil)
		return
	}
	p.onHealth.Store(&fn)
}

func (p *Pool) healthChanged() {
	if fn := p.onHealth.Load(); fn != nil {
		(*fn)(p)
	}
}

func (p *Pool) beginSlowStart(b *Backend, now int64) {
	if p.slowStart <= 0 {
		return
	}
	if b.slowSince.Swap(now) == 0 {
		p.nSlow.Add(1)
	}
}

// StickyCookie returns the Set-Cookie value that binds the client to b,
// or "" when the pool is not sticky or the request already carries it.
func (p *Pool) StickyCookie(k Key, b *Backend) string {
	if p.sticky == nil || b == nil {
		return ""
	}
	if v, ok := cookieValue(k.Head, p.sticky.name); ok && v == b.id {
		return ""
	}
	return b.setCookie
}

var errHashKey = errors.New("route: bad hash_key")
