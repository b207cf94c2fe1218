package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
)

// noBackend marks an empty ring slot (consts.h NO_BACKEND).
const noBackend = ^uint32(0)

// ethHeaderLen is added to the MTU to get the largest frame XDP may send.
const ethHeaderLen = 14

// tables mirrors what the kernel maps hold, so Apply writes only the
// difference.
type tables struct {
	services map[svcID]*svcState
	svcIDs   idPool
	backends map[backendID]*backendState
	beIDs    idPool
	cookie   uint32
	deny4    []netip.Prefix
	deny6    []netip.Prefix
	guarded  map[Listener]struct{}
}

type svcState struct {
	id   uint32
	ring []uint32 // backend id per slot
	hash uint32   // MaglevTableHash of the ring
}

type backendState struct {
	id     uint32
	cookie uint32
}

func newTables() tables {
	return tables{
		services: map[svcID]*svcState{},
		backends: map[backendID]*backendState{},
		guarded:  map[Listener]struct{}{},
	}
}

// idPool hands out small ids and takes them back first in, first out, so
// a freed id is reused as late as possible: a packet that read an old id
// just before the swap must not find a new tenant under it.
type idPool struct {
	next uint32
	free []uint32
}

func (p *idPool) get(limit uint32) (uint32, bool) {
	if p.next < limit {
		p.next++
		return p.next - 1, true
	}
	if len(p.free) == 0 {
		return 0, false
	}
	id := p.free[0]
	p.free = p.free[1:]
	return id, true
}

func (p *idPool) put(id uint32) { p.free = append(p.free, id) }

// Apply makes the kernel tables hold st, without detaching: on boot and on
// every reload. st is validated first; an invalid State changes nothing
// and the error lists every problem.
//
// Packets never see a half-updated table: a changed Maglev table is built
// in a fresh map and swapped in by one map-in-map update, deny lists
// likewise, and services, backends and the config live in non-preallocated
// hash maps whose updates replace a value at once. New backends are written
// before the tables that name them, and removed ones deleted after. Flows
// pinned to a backend that stays keep it; flows of a removed backend are
// balanced again on their next packet.
func (p *Program) Apply(st State) error {
	pl, err := st.validate(p.opts)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("bpf: apply: program closed")
	}
	t := &p.tables

	if err := p.writeConfig(pl.cfg, st.MTU); err != nil {
		return err
	}

	// Backends first: every id a new ring names must resolve.
	for bid := range pl.backends {
		if _, ok := t.backends[bid]; ok {
			continue
		}
		id, ok := t.beIDs.get(p.opts.MaxBackends)
		if !ok {
			return fmt.Errorf("bpf: apply: no free backend id (limit %d)", p.opts.MaxBackends)
		}
		t.cookie++
		v := lbBackend{Addr: addrWords(bid.addr), Mac: bid.mac, Family: family(bid.addr), Cookie: t.cookie}
		if err := p.objs.Backends.Put(id, &v); err != nil {
			t.beIDs.put(id)
			return fmt.Errorf("bpf: apply: backend %s: %w", bid.addr, err)
		}
		t.backends[bid] = &backendState{id: id, cookie: t.cookie}
	}

	for sid, ps := range pl.services {
		ring, hash := p.buildRing(ps)
		cur := t.services[sid]
		if cur != nil && slices.Equal(cur.ring, ring) {
			cur.hash = hash // the same slots may carry new names
			continue
		}
		isNew := cur == nil
		if isNew {
			id, ok := t.svcIDs.get(p.opts.MaxServices)
			if !ok {
				return fmt.Errorf("bpf: apply: no free service id (limit %d)", p.opts.MaxServices)
			}
			cur = &svcState{id: id}
		}
		if err := p.swapRing(cur.id, ring); err != nil {
			if isNew {
				t.svcIDs.put(cur.id)
			}
			return fmt.Errorf("bpf: apply: service %s %s: %w", sid.proto, netip.AddrPortFrom(sid.vip, sid.port), err)
		}
		cur.ring, cur.hash = ring, hash
		if isNew {
			// The ring is in place before the service points at it.
			if err := p.objs.Services.Put(svcKey(sid), &lbSvc{Id: cur.id}); err != nil {
				_ = p.objs.Rings.Delete(cur.id)
				t.svcIDs.put(cur.id)
				return fmt.Errorf("bpf: apply: service %s %s: %w", sid.proto, netip.AddrPortFrom(sid.vip, sid.port), err)
			}
			t.services[sid] = cur
		}
	}
	for sid, cur := range t.services {
		if _, keep := pl.services[sid]; keep {
			continue
		}
		if err := p.objs.Services.Delete(svcKey(sid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: apply: remove service %s: %w", netip.AddrPortFrom(sid.vip, sid.port), err)
		}
		if err := p.objs.Rings.Delete(cur.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: apply: remove ring %d: %w", cur.id, err)
		}
		delete(t.services, sid)
		t.svcIDs.put(cur.id)
	}

	// Backends last: no ring names them any more.
	for bid, be := range t.backends {
		if _, keep := pl.backends[bid]; keep {
			continue
		}
		if err := p.objs.Backends.Delete(be.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: apply: remove backend %s: %w", bid.addr, err)
		}
		delete(t.backends, bid)
		t.beIDs.put(be.id)
	}

	if err := p.applyGuarded(pl.guarded); err != nil {
		return err
	}
	if !slices.Equal(t.deny4, pl.deny4) {
		if err := p.swapDeny(p.objs.DenyV4, p.inner.deny4, pl.deny4); err != nil {
			return fmt.Errorf("bpf: apply: deny list v4: %w", err)
		}
		t.deny4 = pl.deny4
	}
	if !slices.Equal(t.deny6, pl.deny6) {
		if err := p.swapDeny(p.objs.DenyV6, p.inner.deny6, pl.deny6); err != nil {
			return fmt.Errorf("bpf: apply: deny list v6: %w", err)
		}
		t.deny6 = pl.deny6
	}
	p.last, p.lastMTU = pl, st.MTU
	return nil
}

// writeConfig stores the config; mtu 0 means the attached interface's.
func (p *Program) writeConfig(cfg lbConfig, mtu int) error {
	if mtu == 0 {
		mtu = p.ifMTU
	}
	if mtu > 0 {
		cfg.MaxFrame = uint32(mtu + ethHeaderLen)
	}
	if err := p.objs.Settings.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("bpf: apply: config: %w", err)
	}
	return nil
}

// buildRing runs MaglevTable and maps backend indexes to backend ids; it
// returns the table's MaglevTableHash too.
func (p *Program) buildRing(ps planService) ([]uint32, uint32) {
	table := MaglevTable(ps.names, ps.weights, p.opts.RingSize)
	ids := make([]uint32, len(ps.members))
	for i, bid := range ps.members {
		ids[i] = p.tables.backends[bid].id
	}
	ring := make([]uint32, len(table))
	for i, b := range table {
		if b < 0 {
			ring[i] = noBackend
		} else {
			ring[i] = ids[b]
		}
	}
	return ring, MaglevTableHash(ps.names, table)
}

// TableHash is the Maglev table fingerprint of one service.
type TableHash struct {
	VIP   netip.Addr
	Port  uint16
	Proto Proto
	Hash  uint32 // MaglevTableHash of the service's table
}

// TableHashes returns the fingerprint of every service's applied Maglev
// table, ordered by protocol, VIP and port.
func (p *Program) TableHashes() []TableHash {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TableHash, 0, len(p.tables.services))
	for sid, s := range p.tables.services {
		out = append(out, TableHash{VIP: sid.vip, Port: sid.port, Proto: sid.proto, Hash: s.hash})
	}
	slices.SortFunc(out, func(a, b TableHash) int {
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return out
}

// swapRing fills a new Maglev table map and puts it at rings[id].
func (p *Program) swapRing(id uint32, ring []uint32) error {
	m, err := ebpf.NewMap(p.inner.ring)
	if err != nil {
		return fmt.Errorf("create ring: %w", err)
	}
	defer m.Close() // the outer map holds its own reference
	keys := make([]uint32, len(ring))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, ring, nil); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("fill ring: %w", err)
		}
		for i, v := range ring { // kernels without batch ops
			if err := m.Put(uint32(i), v); err != nil {
				return fmt.Errorf("fill ring: %w", err)
			}
		}
	}
	if err := p.objs.Rings.Put(id, m); err != nil {
		return fmt.Errorf("swap ring: %w", err)
	}
	return nil
}

// swapDeny builds a new deny trie and swaps it in; an empty list empties
// the slot, which the program reads as "deny nothing".
func (p *Program) swapDeny(outer *ebpf.Map, spec *ebpf.MapSpec, prefixes []netip.Prefix) error {
	if len(prefixes) == 0 {
		if err := outer.Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		return nil
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return fmt.Errorf("create trie: %w", err)
	}
	defer m.Close()
	for _, pfx := range prefixes {
		w := addrWords(pfx.Addr())
		var err error
		if pfx.Addr().Is4() {
			err = m.Put(&lbLpmV4Key{Prefixlen: uint32(pfx.Bits()), Addr: w[0]}, uint32(1))
		} else {
			err = m.Put(&lbLpmV6Key{Prefixlen: uint32(pfx.Bits()), Addr: w}, uint32(1))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", pfx, err)
		}
	}
	return outer.Put(uint32(0), m)
}

// applyGuarded brings the guarded port set to want.
func (p *Program) applyGuarded(want map[Listener]struct{}) error {
	t := &p.tables
	for l := range want {
		if _, ok := t.guarded[l]; ok {
			continue
		}
		if err := p.objs.Guarded.Put(portKey(l), uint32(1)); err != nil {
			return fmt.Errorf("bpf: apply: guarded %s/%d: %w", l.Proto, l.Port, err)
		}
		t.guarded[l] = struct{}{}
	}
	for l := range t.guarded {
		if _, ok := want[l]; ok {
			continue
		}
		if err := p.objs.Guarded.Delete(portKey(l)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: apply: guarded %s/%d: %w", l.Proto, l.Port, err)
		}
		delete(t.guarded, l)
	}
	return nil
}

func svcKey(s svcID) *lbSvcKey {
	return &lbSvcKey{Addr: addrWords(s.vip), Port: hton16(s.port), Proto: uint8(s.proto), Family: family(s.vip)}
}

func portKey(l Listener) *lbPortKey {
	return &lbPortKey{Port: hton16(l.Port), Proto: uint8(l.Proto)}
}
