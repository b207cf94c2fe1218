package passthrough

import (
	"container/list"

	"github.com/expressgateway/expressgateway/frames/quic"
)

// learned is the table of Connection IDs whose backend the listener has
// seen rather than decoded: the Source Connection IDs of backends'
// long-header replies, clients' first Destination Connection IDs once the
// fallback has placed them, and the Destination Connection IDs of known
// flows. It lets a connection to a server without QUIC-LB keep its
// backend across a new 4-tuple (NAT rebinding, a gateway restart behind
// the same address) and across pool changes.
//
// Bounded by count (the least recently seen entry goes first) and by age
// (ttl since last seen; 0 = no expiry). It holds the backend's address,
// not the backend, so an entry outlives a pool reload and dies with the
// backend's removal. Not safe for concurrent use: the listener's mutex
// guards it.
type learned struct {
	max  int
	ttl  int64 // nanos
	m    map[quic.ConnID]*list.Element
	lru  list.List // front: most recently seen; values *learnedEntry
	lens uint32    // bit n set: some entry is n bytes long
}

type learnedEntry struct {
	cid     quic.ConnID
	backend string
	seen    int64
}

func newLearned(max int, ttl int64) *learned {
	return &learned{max: max, ttl: ttl, m: make(map[quic.ConnID]*list.Element)}
}

// put records (or refreshes) cid → backend at time now, evicting the
// least recently seen entry when full. It reports whether an entry was
// evicted.
func (t *learned) put(cid quic.ConnID, backend string, now int64) (evicted bool) {
	if e, ok := t.m[cid]; ok {
		le := e.Value.(*learnedEntry)
		le.backend, le.seen = backend, now
		t.lru.MoveToFront(e)
		return false
	}
	if len(t.m) >= t.max {
		t.remove(t.lru.Back())
		evicted = true
	}
	t.m[cid] = t.lru.PushFront(&learnedEntry{cid: cid, backend: backend, seen: now})
	t.lens |= 1 << cid.Len()
	return evicted
}

// get returns cid's backend address if the entry is live at now.
func (t *learned) get(cid quic.ConnID, now int64) (string, bool) {
	e, ok := t.m[cid]
	if !ok {
		return "", false
	}
	le := e.Value.(*learnedEntry)
	if t.ttl > 0 && now-le.seen >= t.ttl {
		t.remove(e)
		return "", false
	}
	return le.backend, true
}

// expire removes the entries unseen for ttl, visiting only those (the
// list is ordered by last sight). It returns how many went.
func (t *learned) expire(now int64) int {
	if t.ttl == 0 {
		return 0
	}
	n := 0
	for e := t.lru.Back(); e != nil && now-e.Value.(*learnedEntry).seen >= t.ttl; e = t.lru.Back() {
		t.remove(e)
		n++
	}
	return n
}

func (t *learned) remove(e *list.Element) {
	delete(t.m, e.Value.(*learnedEntry).cid)
	t.lru.Remove(e)
}

func (t *learned) len() int { return len(t.m) }
