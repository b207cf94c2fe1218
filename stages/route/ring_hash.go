package route

import (
	"slices"
	"strconv"
)

// ringHash is consistent hashing on a ring (Karger et al. 1997; Envoy's
// ring_hash, ketama): each backend owns points on a 64-bit ring in
// proportion to its weight, and a key goes to the owner of the first point
// at or after its hash. An unusable owner passes the key on to the next
// point's owner, so removing one of N backends moves only its ~1/N of keys.
// Slow start does not apply: changing a weight would move keys.
type ringHash struct {
	hashes []uint64 // sorted point hashes
	owners []int32  // backend index of each point
}

func newRingHash(p *Pool) *ringHash {
	// Points per backend depend on its own weight only (ketama), so that
	// adding or removing a backend leaves every other's points in place;
	// only a pool too big for maxRingSize is scaled down.
	var total int64
	for _, b := range p.backends {
		total += int64(b.Weight)
	}
	perWeight := min(ringPointsPerWeight, max(1, maxRingSize/total))
	type point struct {
		h uint64
		i int32
	}
	pts := make([]point, 0, perWeight*total)
	for i, b := range p.backends {
		n := perWeight * int64(b.Weight)
		name := b.Protocol + "://" + b.Address + "#"
		for j := range n {
			pts = append(pts, point{hashString(name + strconv.FormatInt(j, 10)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return int(a.i - b.i)
	})
	r := &ringHash{hashes: make([]uint64, len(pts)), owners: make([]int32, len(pts))}
	for i, pt := range pts {
		r.hashes[i], r.owners[i] = pt.h, pt.i
	}
	return r
}

// Pick implements Picker.
func (r *ringHash) Pick(p *Pool, k Key) *Backend {
	h := p.keyHash(&k)
	i, _ := slices.BinarySearch(r.hashes, h)
	n := len(r.hashes)
	for j := range n {
		if b := p.backends[r.owners[(i+j)%n]]; p.Usable(b, &k) {
			return b
		}
	}
	return nil
}
