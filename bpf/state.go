package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Proto is an L4 protocol of a service.
type Proto uint8

// The protocols a service can carry (IANA protocol numbers).
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// OverCapAction is what happens to a new flow above the per-CPU rate cap.
type OverCapAction uint8

const (
	// OverCapPass hands the flow to the kernel stack (and so to the
	// userspace listeners, if any), the safe default.
	OverCapPass OverCapAction = iota
	// OverCapDrop drops it in XDP.
	OverCapDrop
)

func (a OverCapAction) String() string {
	if a == OverCapDrop {
		return "drop"
	}
	return "pass"
}

// State is everything the kernel tables hold, built from the config and
// handed whole to Program.Apply on boot and on every reload.
type State struct {
	// Services are the (VIP, port, protocol) balanced in XDP.
	Services []Service
	// Guarded are listener ports served in userspace (L7, or the L4
	// relays) whose TCP SYNs count toward the new-flow rate cap; their
	// packets otherwise pass untouched. Optional.
	Guarded []Listener
	// Deny holds source prefixes dropped in XDP, for all traffic.
	Deny []netip.Prefix
	// SourceV4 and SourceV6 are the outer source addresses of the tunnel
	// packets (an address of this balancer). Required for every family
	// that some backend has.
	SourceV4, SourceV6 netip.Addr
	// GatewayMAC is the next-hop Ethernet address for backends without
	// their own MAC (typically the default router's; see ResolveNextHop).
	GatewayMAC net.HardwareAddr
	// NewFlowRate caps new flows (TCP SYN, first UDP packet of a flow) per
	// second per CPU; 0 means no cap.
	NewFlowRate uint32
	// OverCap says what to do with new flows above the cap.
	OverCap OverCapAction
	// MTU is the largest IP packet the egress link carries; encapsulated
	// packets above it are passed to the kernel instead. 0 means the MTU
	// of the attached interface (unchecked before Attach).
	MTU int
}

// Service is one balanced (VIP, port, protocol).
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Proto    Proto
	Backends []Backend
}

// Backend is one real server of a service. Its tunnel endpoint is Addr;
// it must decapsulate IP-in-IP (ipip, ip6tnl) and own the VIP.
type Backend struct {
	// Name is the backend's Maglev identity; empty means Addr.String().
	// Keep it stable across reloads so the backend keeps its slots.
	Name string
	Addr netip.Addr
	// Weight sets the share of new flows; 0 drains the backend (it gets
	// no new flows, its pinned flows stay while it is listed).
	Weight uint32
	// MAC is the next-hop Ethernet address toward Addr; empty means
	// State.GatewayMAC.
	MAC net.HardwareAddr
}

// Listener is a guarded userspace listener port.
type Listener struct {
	Port  uint16
	Proto Proto
}

// svcID is a service as the kernel keys it.
type svcID struct {
	vip   netip.Addr
	port  uint16
	proto Proto
}

// backendID is a backend as the backends map knows it: a change of
// address or next hop makes a new entry.
type backendID struct {
	addr netip.Addr
	mac  [6]byte
}

// plan is a validated State in kernel terms.
type plan struct {
	services map[svcID]planService
	backends map[backendID]struct{}
	deny4    []netip.Prefix
	deny6    []netip.Prefix
	guarded  map[Listener]struct{}
	cfg      lbConfig
}

type planService struct {
	names   []string
	weights []uint32
	members []backendID // per names index
}

// validate checks st against the limits of opts and turns it into a plan.
// It returns every problem at once.
func (st *State) validate(opts Options) (*plan, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("bpf: "+format, a...)) }

	pl := &plan{
		services: make(map[svcID]planService, len(st.Services)),
		backends: make(map[backendID]struct{}),
		guarded:  make(map[Listener]struct{}, len(st.Guarded)),
	}
	var gw [6]byte
	haveGW := len(st.GatewayMAC) == 6
	if len(st.GatewayMAC) != 0 && !haveGW {
		bad("gateway_mac: %q is not a 6-byte Ethernet address", st.GatewayMAC)
	}
	copy(gw[:], st.GatewayMAC)
	needV4, needV6 := false, false

	if len(st.Services) > int(opts.MaxServices) {
		bad("services: %d services, the limit is %d", len(st.Services), opts.MaxServices)
	}
	for i, s := range st.Services {
		where := fmt.Sprintf("services[%d] (%s %s)", i, s.Proto, netip.AddrPortFrom(s.VIP, s.Port))
		vip := s.VIP.Unmap()
		if !vip.IsValid() {
			bad("%s: no VIP", where)
			continue
		}
		if s.Port == 0 {
			bad("%s: port 0", where)
		}
		if s.Proto != TCP && s.Proto != UDP {
			bad("%s: protocol must be tcp or udp", where)
		}
		id := svcID{vip: vip, port: s.Port, proto: s.Proto}
		if _, dup := pl.services[id]; dup {
			bad("%s: listed twice", where)
			continue
		}
		ps := planService{}
		seen := map[string]bool{}
		for j, b := range s.Backends {
			bwhere := fmt.Sprintf("%s.backends[%d] (%s)", where, j, b.Addr)
			addr := b.Addr.Unmap()
			if !addr.IsValid() || addr.IsUnspecified() {
				bad("%s: no address", bwhere)
				continue
			}
			name := b.Name
			if name == "" {
				name = addr.String()
			}
			if seen[name] {
				bad("%s: backend %q listed twice", bwhere, name)
				continue
			}
			seen[name] = true
			var mac [6]byte
			switch {
			case len(b.MAC) == 6:
				copy(mac[:], b.MAC)
			case len(b.MAC) != 0:
				bad("%s: mac %q is not a 6-byte Ethernet address", bwhere, b.MAC)
			case haveGW:
				mac = gw
			default:
				bad("%s: no next-hop MAC (set the backend's MAC or the gateway MAC)", bwhere)
			}
			if addr.Is4() {
				needV4 = true
			} else {
				needV6 = true
			}
			bid := backendID{addr: addr, mac: mac}
			pl.backends[bid] = struct{}{}
			ps.names = append(ps.names, name)
			ps.weights = append(ps.weights, b.Weight)
			ps.members = append(ps.members, bid)
		}
		pl.services[id] = ps
	}
	if len(pl.backends) > int(opts.MaxBackends) {
		bad("services: %d distinct backends, the limit is %d", len(pl.backends), opts.MaxBackends)
	}

	cfg := lbConfig{RateCap: st.NewFlowRate, Seed: opts.HashSeed}
	if st.OverCap == OverCapDrop {
		cfg.Flags |= cfgOverCapDrop
	}
	if src := st.SourceV4.Unmap(); src.IsValid() {
		if !src.Is4() || src.IsUnspecified() {
			bad("source_v4: %s is not a usable IPv4 address", st.SourceV4)
		} else {
			cfg.Flags |= cfgHaveSrc4
			cfg.Src4 = addrWords(src)[0]
		}
	} else if needV4 {
		bad("source_v4: required, since some backends are IPv4")
	}
	if src := st.SourceV6; src.IsValid() {
		if !src.Is6() || src.Is4In6() || src.IsUnspecified() {
			bad("source_v6: %s is not a usable IPv6 address", st.SourceV6)
		} else {
			cfg.Flags |= cfgHaveSrc6
			cfg.Src6 = addrWords(src)
		}
	} else if needV6 {
		bad("source_v6: required, since some backends are IPv6")
	}
	if st.MTU < 0 || st.MTU > 65535 {
		bad("mtu: %d out of range", st.MTU)
	}

	for i, p := range st.Deny {
		if !p.IsValid() {
			bad("deny[%d]: invalid prefix", i)
			continue
		}
		p = p.Masked()
		if p.Addr().Is4() {
			pl.deny4 = append(pl.deny4, p)
		} else {
			pl.deny6 = append(pl.deny6, p)
		}
	}
	if len(pl.deny4) > int(opts.MaxDeny) || len(pl.deny6) > int(opts.MaxDeny) {
		bad("deny: %d IPv4 and %d IPv6 prefixes, the limit is %d each", len(pl.deny4), len(pl.deny6), opts.MaxDeny)
	}
	for i, l := range st.Guarded {
		if l.Port == 0 || (l.Proto != TCP && l.Proto != UDP) {
			bad("guarded[%d]: %s port %d is not a listener", i, l.Proto, l.Port)
			continue
		}
		pl.guarded[l] = struct{}{}
	}
	if len(pl.guarded) > int(opts.MaxGuarded) {
		bad("guarded: %d ports, the limit is %d", len(pl.guarded), opts.MaxGuarded)
	}
	pl.cfg = cfg
	return pl, errors.Join(errs...)
}

// config.flags bits (consts.h CFG_*).
const (
	cfgOverCapDrop = 1 << 0
	cfgHaveSrc4    = 1 << 1
	cfgHaveSrc6    = 1 << 2
)

// Address families as the kernel tables store them (consts.h FAMILY_*).
const (
	familyV4 = 4
	familyV6 = 6
)

// addrWords lays an address out as the C __u32[4] in network order: the
// bytes in memory order, read back in host order.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	var b []byte
	if a.Is4() {
		b4 := a.As4()
		b = b4[:]
	} else {
		b16 := a.As16()
		b = b16[:]
	}
	for i := 0; i*4 < len(b); i++ {
		w[i] = nativeEndian.Uint32(b[i*4:])
	}
	return w
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return familyV4
	}
	return familyV6
}

// hton16 turns a port into the network-order value of a C __u16 field.
func hton16(v uint16) uint16 {
	var b [2]byte
	b[0], b[1] = byte(v>>8), byte(v)
	return nativeEndian.Uint16(b[:])
}
