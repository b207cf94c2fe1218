package bpf

import (
	"fmt"
	"math"
	"testing"
)

func counts(table []int32, n int) []int {
	c := make([]int, n)
	for _, b := range table {
		if b >= 0 {
			c[b]++
		}
	}
	return c
}

func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("10.0.%d.%d:80", i/256, i%256)
	}
	return s
}

func ones(n int) []uint32 {
	w := make([]uint32, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func TestMaglev_EqualWeights_SpreadEvenly(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 10, 50} {
		table := MaglevTable(names(n), ones(n), DefaultRingSize)
		for i, c := range counts(table, n) {
			want := DefaultRingSize / n
			// Equal weights take turns one for one: shares differ by one slot.
			if c < want || c > want+1 {
				t.Errorf("n=%d backend %d: %d slots, want %d or %d", n, i, c, want, want+1)
			}
		}
	}
}

func TestMaglev_Weights_ShareFollowsWeight(t *testing.T) {
	weights := []uint32{1, 2, 3, 10, 0}
	table := MaglevTable(names(len(weights)), weights, DefaultRingSize)
	var sum uint32
	for _, w := range weights {
		sum += w
	}
	for i, c := range counts(table, len(weights)) {
		want := float64(DefaultRingSize) * float64(weights[i]) / float64(sum)
		if math.Abs(float64(c)-want) > 0.01*DefaultRingSize {
			t.Errorf("backend %d (weight %d): %d slots, want %.0f ± 1%%", i, weights[i], c, want)
		}
	}
}

func TestMaglev_NoBackends_AllMinusOne(t *testing.T) {
	for _, tc := range []struct {
		names   []string
		weights []uint32
	}{
		{nil, nil},
		{names(3), []uint32{0, 0, 0}},
		{names(3), []uint32{1}}, // length mismatch
	} {
		for i, b := range MaglevTable(tc.names, tc.weights, 101) {
			if b != -1 {
				t.Fatalf("%v: slot %d = %d, want -1", tc.names, i, b)
			}
		}
	}
	if got := MaglevTable(names(2), ones(2), 0); len(got) != 0 {
		t.Fatalf("size 0: got %d slots", len(got))
	}
}

func TestMaglev_Deterministic(t *testing.T) {
	a := MaglevTable(names(5), []uint32{1, 2, 3, 4, 5}, 65521)
	b := MaglevTable(names(5), []uint32{1, 2, 3, 4, 5}, 65521)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("slot %d differs: %d vs %d", i, a[i], b[i])
		}
	}
}

// Removing one of N backends must move only about 1/N of the slots: the
// removed backend's own, plus a little Maglev churn (paper §5.3).
func TestMaglev_RemoveOne_MovesAboutOneNth(t *testing.T) {
	for _, n := range []int{3, 5, 10, 20} {
		all := names(n)
		before := MaglevTable(all, ones(n), DefaultRingSize)
		for _, gone := range []int{0, n / 2, n - 1} {
			rest := append(append([]string{}, all[:gone]...), all[gone+1:]...)
			after := MaglevTable(rest, ones(n-1), DefaultRingSize)
			moved := 0
			for i := range before {
				if all[before[i]] != rest[after[i]] {
					moved++
				}
			}
			frac := float64(moved) / DefaultRingSize
			limit := 1/float64(n) + 0.03
			if frac > limit {
				t.Errorf("n=%d remove %d: %.3f of slots moved, want ≤ %.3f", n, gone, frac, limit)
			}
			if frac < 1/float64(n)-0.01 {
				t.Errorf("n=%d remove %d: only %.3f moved; the removed backend's slots must all move", n, gone, frac)
			}
		}
	}
}

func TestMaglev_CompositeSize_FillsEverySlot(t *testing.T) {
	for _, size := range []uint32{1, 4, 100, 1024} {
		table := MaglevTable(names(7), []uint32{1, 1, 2, 3, 1, 1, 5}, size)
		for i, b := range table {
			if b < 0 {
				t.Fatalf("size %d: slot %d empty", size, i)
			}
		}
	}
}

func TestIsPrime(t *testing.T) {
	for n, want := range map[uint32]bool{0: false, 1: false, 2: true, 4: false, 251: true, 65537: true, 65535: false, 4294967291: true} {
		if got := IsPrime(n); got != want {
			t.Errorf("IsPrime(%d) = %v", n, got)
		}
	}
}

func BenchmarkMaglevTable(b *testing.B) {
	n := names(10)
	w := ones(10)
	b.ReportAllocs()
	for b.Loop() {
		MaglevTable(n, w, DefaultRingSize)
	}
}

// The fingerprint follows the slot → backend mapping: the same inputs
// give the same hash in every process, and any change of owner (a
// backend drained, renamed, another table size) gives another.
func TestMaglevTableHash_FollowsTheMapping(t *testing.T) {
	all := names(5)
	base := MaglevTableHash(all, MaglevTable(all, ones(5), DefaultRingSize))
	if again := MaglevTableHash(all, MaglevTable(names(5), ones(5), DefaultRingSize)); again != base {
		t.Fatalf("rebuilt: %#x, want %#x", again, base)
	}
	drained := ones(5)
	drained[2] = 0
	renamed := names(5)
	renamed[4] = "elsewhere"
	for what, h := range map[string]uint32{
		"drained": MaglevTableHash(all, MaglevTable(all, drained, DefaultRingSize)),
		"renamed": MaglevTableHash(renamed, MaglevTable(renamed, ones(5), DefaultRingSize)),
		"size":    MaglevTableHash(all, MaglevTable(all, ones(5), 251)),
		"empty":   MaglevTableHash(all, MaglevTable(all, make([]uint32, 5), DefaultRingSize)),
	} {
		if h == base {
			t.Errorf("%s: the hash did not change (%#x)", what, h)
		}
	}
	// One slot given to another backend changes it.
	table := MaglevTable(all, ones(5), DefaultRingSize)
	table[100] = (table[100] + 1) % 5
	if MaglevTableHash(all, table) == base {
		t.Error("one slot moved: the hash did not change")
	}
}
