package bpf

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"testing"
)

// changeFlows is how many simulated 5-tuples the change tests route.
const changeFlows = 100_000

// tupleSlots hashes n distinct simulated TCP 5-tuples (clients across a
// /8, ephemeral ports, one VIP:443) to table slots. The kernel hashes
// with jhash; any well-mixed hash gives the same moved fractions, since
// those depend on the table only.
func tupleSlots(n int, size uint32) []uint32 {
	out := make([]uint32, n)
	var b [13]byte
	for i := range n {
		binary.BigEndian.PutUint32(b[0:], 0x0a000000|uint32(i*7919)&0xffffff) // src 10.x.y.z
		binary.BigEndian.PutUint16(b[4:], uint16(32768+i%28232))              // sport
		binary.BigEndian.PutUint32(b[6:], 0xc0000201)                         // dst 192.0.2.1
		binary.BigEndian.PutUint16(b[10:], 443)
		b[12] = 6
		h := fnv.New64a()
		h.Write(b[:])
		out[i] = uint32(splitmix64(h.Sum64()) % uint64(size))
	}
	return out
}

// owners maps each flow's slot to its backend's name.
func owners(table []int32, names []string, slots []uint32) []string {
	out := make([]string, len(slots))
	for i, s := range slots {
		out[i] = names[table[s]]
	}
	return out
}

// Maglev's consistency under a backend change, over 100,000 flows.
//
// The bounds: the paper (Eisenbud et al., NSDI 2016, §3.4) gives no
// minimal-disruption guarantee; it shows that each backend owns M/N ± 1
// slots and argues that, with the table size M much larger than N (M ≥
// 100·N, §3.4), a change of one backend rewrites few slots beyond those
// it must. So:
//
//   - removing one of N backends moves all of its flows (≈ 1/N) and, in
//     excess, at most 1% of the others' flows (measured: at most 0.34%,
//     at N = 20);
//   - adding one moves 1/(N+1) ± 1% of flows (its even share of the new
//     table), and in excess at most 1% between the old backends.
func TestMaglev_ChangeMovesOnlyTheChangedBackendsFlows(t *testing.T) {
	slots := tupleSlots(changeFlows, DefaultRingSize)
	for _, n := range []int{3, 5, 10, 20} {
		all := names(n)
		before := owners(MaglevTable(all, ones(n), DefaultRingSize), all, slots)
		for _, gone := range []int{0, n / 2, n - 1} {
			rest := append(append([]string{}, all[:gone]...), all[gone+1:]...)
			after := owners(MaglevTable(rest, ones(n-1), DefaultRingSize), rest, slots)
			own, excess := 0, 0
			for i := range before {
				switch {
				case before[i] == all[gone]:
					own++ // its backend is gone: it must move
				case after[i] != before[i]:
					excess++
				}
			}
			share, ex := float64(own)/changeFlows, float64(excess)/changeFlows
			t.Logf("n=%d remove #%d: its flows %.4f (1/n = %.4f), excess moved %.4f", n, gone, share, 1/float64(n), ex)
			if d := share - 1/float64(n); d > 0.01 || d < -0.01 {
				t.Errorf("n=%d remove #%d: it owned %.4f of flows, want 1/n ± 0.01", n, gone, share)
			}
			if ex > 0.01 {
				t.Errorf("n=%d remove #%d: %.4f of the other backends' flows moved, want ≤ 0.01", n, gone, ex)
			}
		}

		added := append(append([]string{}, all...), fmt.Sprintf("backend-%d", n))
		after := owners(MaglevTable(added, ones(n+1), DefaultRingSize), added, slots)
		toNew, excess := 0, 0
		for i := range before {
			switch {
			case after[i] == added[n]:
				toNew++
			case after[i] != before[i]:
				excess++
			}
		}
		moved, ex := float64(toNew+excess)/changeFlows, float64(excess)/changeFlows
		want := 1 / float64(n+1)
		t.Logf("n=%d add one: moved %.4f (1/(n+1) = %.4f), of which between old backends %.4f", n, moved, want, ex)
		if d := float64(toNew)/changeFlows - want; d > 0.01 || d < -0.01 {
			t.Errorf("n=%d add one: %.4f of flows went to it, want 1/(n+1) ± 0.01", n, float64(toNew)/changeFlows)
		}
		if ex > 0.01 {
			t.Errorf("n=%d add one: %.4f of flows moved between old backends, want ≤ 0.01", n, ex)
		}
	}
}
