package route

import "github.com/expressgateway/expressgateway/bpf"

// maglev is Google's Maglev hashing (Eisenbud et al., NSDI 2016): a prime
// size lookup table filled from per-backend permutations, the same table
// the XDP fast path uses (bpf.MaglevTable), so L4 in the kernel and L7 here
// agree. Lookups are O(1) and spread more evenly than a ring; removing one
// of N backends moves about 1/N of keys. A key whose slot owner is
// unusable is rehashed (keys of a dead backend spread over the others, no
// one else's move). Slow start does not apply.
type maglev struct {
	table []int32
	hash  uint32 // bpf.MaglevTableHash: equal wherever the pool config is
}

func newMaglev(p *Pool) *maglev {
	size := uint32(bpf.DefaultRingSize)
	if n := uint32(len(p.backends)); n*100 > size {
		for size = n * 100; !bpf.IsPrime(size); size++ {
		}
	}
	names := make([]string, len(p.backends))
	weights := make([]uint32, len(p.backends))
	for i, b := range p.backends {
		names[i] = b.Protocol + "://" + b.Address
		weights[i] = uint32(b.Weight)
	}
	table := bpf.MaglevTable(names, weights, size)
	return &maglev{table: table, hash: bpf.MaglevTableHash(names, table)}
}

// Pick implements Picker.
func (m *maglev) Pick(p *Pool, k Key) *Backend {
	h := p.keyHash(&k)
	n := uint64(len(m.table))
	for i := range uint64(sampleTries(len(p.backends))) {
		if b := p.backends[m.table[mix64(h+i)%n]]; p.Usable(b, &k) {
			return b
		}
	}
	// Most of the pool is unusable: walk the table from the key's slot.
	s := mix64(h) % n
	for i := range n {
		if b := p.backends[m.table[(s+i)%n]]; p.Usable(b, &k) {
			return b
		}
	}
	return nil
}
