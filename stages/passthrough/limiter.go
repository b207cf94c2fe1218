package passthrough

import (
	"container/list"
	"net/netip"
)

// rateTable is the per-source-IP token bucket on packets that would start
// a flow: each IP gets burst tokens, refilled at rate per second, and a
// packet without a token is dropped. Bounded by count: the least recently
// seen IP goes first, which costs nothing a flood can use, since a
// forgotten IP comes back with a full bucket, the state an idle one
// reaches anyway, and the flooding IP is always the most recent. Not safe
// for concurrent use: the listener's mutex guards it.
type rateTable struct {
	perNs float64 // tokens per nanosecond
	burst float64
	size  int
	m     map[netip.Addr]*list.Element
	lru   list.List // front: most recently seen; values *bucket
}

type bucket struct {
	ip     netip.Addr
	tokens float64
	last   int64 // nanos of the last refill
}

// newRateTable returns nil (no limit) for rate 0.
func newRateTable(rate, burst, size int) *rateTable {
	if rate <= 0 {
		return nil
	}
	return &rateTable{perNs: float64(rate) / 1e9, burst: float64(max(burst, 1)), size: size, m: map[netip.Addr]*list.Element{}}
}

// allow takes a token from ip's bucket at time now (nanos), reporting
// whether there was one.
func (t *rateTable) allow(ip netip.Addr, now int64) bool {
	e, ok := t.m[ip]
	if !ok {
		if len(t.m) >= t.size {
			b := t.lru.Back()
			delete(t.m, b.Value.(*bucket).ip)
			t.lru.Remove(b)
		}
		e = t.lru.PushFront(&bucket{ip: ip, tokens: t.burst, last: now})
		t.m[ip] = e
	} else {
		t.lru.MoveToFront(e)
	}
	b := e.Value.(*bucket)
	if now > b.last {
		b.tokens = min(t.burst, b.tokens+float64(now-b.last)*t.perNs)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// expire forgets the buckets that have refilled by now: they are the
// same as absent. The list is ordered by last sight, so it stops at the
// first one still draining.
func (t *rateTable) expire(now int64) {
	full := int64(t.burst / t.perNs)
	for e := t.lru.Back(); e != nil && now-e.Value.(*bucket).last >= full; e = t.lru.Back() {
		delete(t.m, e.Value.(*bucket).ip)
		t.lru.Remove(e)
	}
}

func (t *rateTable) len() int { return len(t.m) }
