package accept

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
)

// gateShards spreads the per-IP counts over several locks so that accepts
// on many cores do not serialise on one mutex.
const gateShards = 64

// Gate admits connections under a per-source-IP cap and a global in-flight
// cap (the Rust ExpressGateway's ConnGate, with the in-flight cap beside it).
type Gate struct {
	perIP    int
	maxConns int64
	inflight atomic.Int64
	seed     maphash.Seed
	shards   [gateShards]struct {
		mu sync.Mutex
		n  map[netip.Addr]int
	}
}

// NewGate returns a gate; perIP or maxConns ≤ 0 disables that cap.
func NewGate(perIP, maxConns int) *Gate {
	g := &Gate{perIP: perIP, maxConns: int64(maxConns), seed: maphash.MakeSeed()}
	for i := range g.shards {
		g.shards[i].n = map[netip.Addr]int{}
	}
	return g
}

// Reject says why a connection was not admitted.
type Reject uint8

// The rejection reasons.
const (
	Admitted Reject = iota
	OverPerIP
	OverInflight
)

// Admit counts a connection from ip. When admitted, the caller must call
// Leave(ip) exactly once when the connection ends.
func (g *Gate) Admit(ip netip.Addr) Reject {
	if g.maxConns > 0 && g.inflight.Add(1) > g.maxConns {
		g.inflight.Add(-1)
		return OverInflight
	} else if g.maxConns <= 0 {
		g.inflight.Add(1)
	}
	if g.perIP > 0 {
		s := &g.shards[maphash.Comparable(g.seed, ip)%gateShards]
		s.mu.Lock()
		if s.n[ip] >= g.perIP {
			s.mu.Unlock()
			g.inflight.Add(-1)
			return OverPerIP
		}
		s.n[ip]++
		s.mu.Unlock()
	}
	return Admitted
}

// Leave releases a connection admitted for ip.
func (g *Gate) Leave(ip netip.Addr) {
	g.inflight.Add(-1)
	if g.perIP > 0 {
		s := &g.shards[maphash.Comparable(g.seed, ip)%gateShards]
		s.mu.Lock()
		if s.n[ip] <= 1 {
			delete(s.n, ip)
		} else {
			s.n[ip]--
		}
		s.mu.Unlock()
	}
}

// Inflight returns the connections currently admitted.
func (g *Gate) Inflight() int64 { return g.inflight.Load() }
