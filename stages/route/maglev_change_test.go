package route

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// tupleKey is the i-th of distinct simulated UDP 5-tuples, keyed by their
// hash as the passthrough listener keys its fallback picks (Key.Hash).
func tupleKey(i int) Key {
	src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	var b [12]byte
	a := src.As4()
	copy(b[:], a[:])
	binary.BigEndian.PutUint16(b[4:], uint16(32768+i%28232))
	copy(b[6:], []byte{192, 0, 2, 1})
	binary.BigEndian.PutUint16(b[10:], 443)
	h := fnv.New64a()
	h.Write(b[:])
	return Key{Src: src, Hash: h.Sum64() | 1}
}

// The Pool's Maglev over 100,000 simulated 5-tuples, when one of n
// backends goes or comes.
//
// The bounds: the Maglev paper (Eisenbud et al., NSDI 2016, §3.4) gives
// no minimal-disruption guarantee; each backend owns M/N ± 1 slots and,
// with the table size M much larger than N (M ≥ 100·N), a change of one
// backend rewrites few slots beyond those it must. So:
//
//   - a backend marked down moves only its own flows, exactly: the table
//     is unchanged and only keys landing on it are rehashed;
//   - removing one from the config (the table rebuilt) moves all of its
//     flows (≈ 1/N) and at most 1% of the others' in excess;
//   - adding one moves 1/(N+1) ± 1% of flows to it, and at most 1%
//     between the old backends.
func TestMaglev_ChangeMovesOnlyTheChangedBackendsFlows(t *testing.T) {
	for _, n := range []int{3, 5, 10, 20} {
		weights := make([]int, n)
		for i := range weights {
			weights[i] = 1
		}
		full := newTestPool(t, "maglev", weights, nil)
		before := hashOwners(t, full, picks, tupleKey)
		gone := full.backends[n/2]
		// moves counts the flows of the gone backend and the others'
		// flows that moved anyway.
		moves := func(after []string) (own, excess int) {
			for i := range before {
				switch {
				case before[i] == gone.Address:
					own++
				case after[i] != before[i]:
					excess++
				}
			}
			return own, excess
		}

		full.SetDown(gone, true)
		after := hashOwners(t, full, picks, tupleKey)
		full.SetDown(gone, false)
		for i := range after {
			if before[i] == gone.Address && after[i] == gone.Address {
				t.Fatalf("n=%d down: flow %d stayed on the down backend", n, i)
			}
		}
		own, excess := moves(after)
		t.Logf("n=%d down: its flows %.4f (1/n = %.4f), excess moved %d", n, float64(own)/picks, 1/float64(n), excess)
		if d := float64(own)/picks - 1/float64(n); d > 0.01 || d < -0.01 {
			t.Errorf("n=%d: the backend owned %.4f of flows, want 1/n ± 0.01", n, float64(own)/picks)
		}
		if excess != 0 {
			t.Errorf("n=%d down: %d flows of other backends moved, want 0", n, excess)
		}

		removed := newTestPool(t, "maglev", weights[:n-1], func(c *conf.Pool) {
			c.Backends = append(c.Backends[:n/2:n/2], c.Backends[n/2+1:]...)
			c.Backends = append(c.Backends, conf.Backend{Address: fmt.Sprintf("10.0.0.%d:80", n), Protocol: "h1", Weight: 1})
		})
		_, excess = moves(hashOwners(t, removed, picks, tupleKey))
		t.Logf("n=%d removed: excess moved %.4f", n, float64(excess)/picks)
		if float64(excess)/picks > 0.01 {
			t.Errorf("n=%d removed: %.4f of the other backends' flows moved, want ≤ 0.01", n, float64(excess)/picks)
		}

		added := newTestPool(t, "maglev", append(weights, 1), nil)
		after = hashOwners(t, added, picks, tupleKey)
		newAddr := added.backends[n].Address
		toNew, between := 0, 0
		for i := range before {
			switch {
			case after[i] == newAddr:
				toNew++
			case after[i] != before[i]:
				between++
			}
		}
		want := 1 / float64(n+1)
		t.Logf("n=%d add one: to it %.4f (1/(n+1) = %.4f), between old backends %.4f", n, float64(toNew)/picks, want, float64(between)/picks)
		if d := float64(toNew)/picks - want; d > 0.01 || d < -0.01 {
			t.Errorf("n=%d add one: %.4f of flows went to it, want 1/(n+1) ± 0.01", n, float64(toNew)/picks)
		}
		if float64(between)/picks > 0.01 {
			t.Errorf("n=%d add one: %.4f of flows moved between old backends, want ≤ 0.01", n, float64(between)/picks)
		}
	}
}
