package bpf

import (
	"hash/fnv"
	"math/bits"
)

// DefaultRingSize is the Maglev table size: a prime well above 100 × the
// number of backends we expect per service, as the Maglev paper (§3.4)
// advises for an even spread.
const DefaultRingSize = 65537

// MaglevTable builds a Maglev lookup table (Eisenbud et al., NSDI 2016,
// §3.4) of size slots for the backends named in names, whose weights are in
// weights. Slot i holds the index into names of the backend owning it, or -1
// when no backend has a positive weight.
//
// The permutation of each backend derives from its name only, so a backend
// keeps most of its slots when others come or go: removing one of N backends
// moves about 1/N of the slots. Weights are honoured by turns: in every
// round the heaviest backend takes one slot and a backend of weight w takes
// one slot whenever its share so far is below w/max of the rounds, so shares
// follow the weights. A weight of 0 leaves a backend out (drained).
//
// size should be prime (see IsPrime); a composite size still fills every
// slot, but spreads worse. The result depends only on the arguments, so
// every process (the XDP loader, the userspace L4 relays, the L7 picker)
// computes the same table. len(weights) must equal len(names).
func MaglevTable(names []string, weights []uint32, size uint32) []int32 {
	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	if size == 0 || len(names) != len(weights) {
		return table
	}
	m := uint64(size)

	perms := make([]maglevPerm, len(names))
	var maxWeight uint64
	for i, name := range names {
		h1, h2 := nameHashes(name)
		p := maglevPerm{offset: h1 % m, skip: 1, weight: uint64(weights[i])}
		if m > 1 {
			p.skip = h2%(m-1) + 1
		}
		perms[i] = p
		maxWeight = max(maxWeight, p.weight)
	}
	if maxWeight == 0 {
		return table
	}

	filled := uint64(0)
	for round := uint64(1); filled < m; round++ {
		for i := range perms {
			p := &perms[i]
			// Take a turn while taken/round < weight/maxWeight.
			if p.weight == 0 || p.taken*maxWeight >= round*p.weight {
				continue
			}
			slot := p.nextFree(table, m)
			table[slot] = int32(i)
			p.taken++
			filled++
			if filled == m {
				break
			}
		}
	}
	return table
}

// maglevPerm is one backend's place in the table build.
type maglevPerm struct {
	offset, skip uint64
	next         uint64 // index into this backend's permutation
	taken        uint64 // slots owned so far
	weight       uint64
}

// nextFree walks the backend's permutation to its next unowned slot. With a
// prime size the permutation visits every slot; with a composite one it may
// cycle early, and a linear probe from the offset finishes the job.
func (p *maglevPerm) nextFree(table []int32, m uint64) uint64 {
	for p.next < m {
		hi, lo := bits.Mul64(p.next, p.skip)
		_, prod := bits.Div64(hi%m, lo, m)
		slot := (p.offset + prod) % m
		p.next++
		if table[slot] < 0 {
			return slot
		}
	}
	for k := uint64(0); k < m; k++ {
		slot := (p.offset + k) % m
		if table[slot] < 0 {
			return slot
		}
	}
	panic("bpf: maglev table full") // unreachable: the caller stops at m
}

// nameHashes gives the two independent hashes of a backend name that seed
// its permutation (offset and skip).
func nameHashes(name string) (uint64, uint64) {
	h := fnv.New64a()
	h.Write([]byte(name))
	x := h.Sum64()
	return splitmix64(x), splitmix64(x ^ 0x9e3779b97f4a7c15)
}

// splitmix64 is a strong 64-bit finaliser (Steele et al., 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// IsPrime reports whether n is prime; Maglev table sizes should be.
func IsPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	for d := uint32(2); uint64(d)*uint64(d) <= uint64(n); d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// MaglevTableHash fingerprints a table built by MaglevTable: a 32-bit hash
// of which backend (by name) owns each slot, in slot order. Instances that
// balance one VIP without talking to each other (behind ECMP) must hold
// the same table; equal hashes on all of them say they do. Only the
// mapping counts, not how the names were listed.
func MaglevTableHash(names []string, table []int32) uint32 {
	ids := make([]uint64, len(names))
	for i, n := range names {
		h := fnv.New64a()
		h.Write([]byte(n))
		ids[i] = h.Sum64()
	}
	x := uint64(len(table))
	for _, b := range table {
		id := uint64(0x9e3779b97f4a7c15) // an empty slot
		if b >= 0 && int(b) < len(ids) {
			id = ids[b]
		}
		x = splitmix64(x ^ id)
	}
	return uint32(x ^ x>>32)
}
