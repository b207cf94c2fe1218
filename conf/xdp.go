package conf

import (
	"net"
	"net/netip"
	"strconv"
)

// This file is the L4 part of the schema: the [xdp] section (services the
// XDP fast path balances in the kernel, its deny list and tunnel source)
// and [listeners.udp] (the userspace UDP relay). [runtime] xdp_enabled,
// xdp_interface, xdp_mode and xdp_new_flow_cap_per_sec_per_cpu say whether
// and where the program attaches; this section says what it does.
//
// A service is one of three shapes:
//
//   - vip + port + protocol + backends: XDP only. When XDP cannot run the
//     service is not served (the gateway logs it and carries on).
//   - vip + port + protocol + pool: the same, backends from a [[pools]].
//   - listener = "NAME": the VIP, port, protocol and backends (or pool) of a
//     tcp or udp listener. The listener is the userspace fallback of the
//     service: when XDP is unavailable it serves the traffic, and when XDP
//     runs it still takes what XDP passes to the kernel (new flows over the
//     rate cap when over_cap = "pass"). Either way a client sees the same
//     service, balanced over the same backends and weights.
//
// XDP forwards by IP-in-IP with direct server return: a backend owns the
// VIP, decapsulates, and answers the client itself, so its port is the
// service port (the packet is not rewritten): a backend address must be an
// IP literal with the service's port.

// Limits and defaults of the L4 sections.
const (
	// DefaultXDPOverCap keeps new flows above the rate cap alive by handing
	// them to the kernel (and so to a userspace listener, if any).
	DefaultXDPOverCap = "pass"
	// MaxXDPServices bounds [[xdp.services]] (the kernel's Maglev tables;
	// bpf.DefaultMaxServices).
	MaxXDPServices = 256
	// MaxXDPDeny bounds the deny list (bpf.DefaultMaxDeny per family).
	MaxXDPDeny = 65536

	// DefaultUDPIdleTimeoutMs forgets a UDP flow (and closes its upstream
	// socket) after this long without a datagram either way.
	DefaultUDPIdleTimeoutMs = 30_000
	// DefaultUDPMaxFlows bounds a udp listener's flow table: each flow holds
	// one upstream socket; past the cap the least recently used flow is
	// evicted.
	DefaultUDPMaxFlows = 16_384
	// DefaultUDPMaxDatagram is the largest datagram relayed (bytes of
	// payload); larger ones are truncated by the socket and dropped.
	DefaultUDPMaxDatagram = 65_507
)

// XDP is [xdp]: what the XDP fast path balances and filters. It is used
// only when [runtime].xdp_enabled is true; a reload applies it live
// without detaching the program.
type XDP struct {
	// SourceV4 is the outer source address of IPv4 tunnel packets: an
	// address of this host on xdp_interface. Required when a backend is IPv4.
	SourceV4 string `koanf:"source_v4"`
	// SourceV6 is the outer source address of IPv6 tunnel packets.
	// Required when a backend is IPv6.
	SourceV6 string `koanf:"source_v6"`
	// GatewayMAC is the next-hop Ethernet address (aa:bb:cc:dd:ee:ff) of
	// every backend, usually the default router's. Empty: each backend's
	// next hop is read from the kernel's route and neighbour tables at boot
	// and on every reload.
	GatewayMAC string `koanf:"gateway_mac"`
	// OverCap is what happens to a new flow above
	// [runtime].xdp_new_flow_cap_per_sec_per_cpu: "pass" hands it to the
	// kernel stack (userspace listeners), "drop" drops it in XDP.
	OverCap string `koanf:"over_cap"`
	// Deny lists source prefixes (CIDRs or addresses) dropped in XDP, for
	// all traffic on xdp_interface, L4 and L7 alike.
	Deny []string `koanf:"deny"`
	// Services are the (VIP, port, protocol) balanced in the kernel.
	Services []XDPService `koanf:"services"`
}

// XDPService is one [[xdp.services]] entry.
type XDPService struct {
	// Name labels the service in logs; defaults to protocol/vip:port or the
	// listener's name.
	Name string `koanf:"name"`
	// Listener names a tcp or udp listener whose address (an IP, not a
	// wildcard) is the VIP and port and whose backends or pool serve the
	// service; it is the service's userspace fallback. Excludes vip, port,
	// protocol, backends and pool.
	Listener string `koanf:"listener"`
	// VIP is the service address the clients send to.
	VIP string `koanf:"vip"`
	// Port is the service port (1..65535).
	Port int `koanf:"port"`
	// Protocol is tcp or udp.
	Protocol string `koanf:"protocol"`
	// Backends are the service's real servers: address IP:port with the
	// service port, and weight.
	Backends []Backend `koanf:"backends"`
	// Pool names a [[pools]] entry whose backends serve the service.
	Pool string `koanf:"pool"`
}

// UDPRelay is [listeners.udp]: the userspace relay of a udp listener.
type UDPRelay struct {
	// IdleTimeoutMs forgets a flow (client address and port) idle this long
	// in both directions, and closes its upstream socket.
	IdleTimeoutMs int `koanf:"idle_timeout_ms"`
	// MaxFlows bounds the flow table; a new flow past it evicts the least
	// recently active one.
	MaxFlows int `koanf:"max_flows"`
	// MaxDatagramBytes is the largest payload relayed; longer datagrams
	// are dropped and counted.
	MaxDatagramBytes int `koanf:"max_datagram_bytes"`
}

func (u *UDPRelay) setDefaults() {
	def(&u.IdleTimeoutMs, DefaultUDPIdleTimeoutMs)
	def(&u.MaxFlows, DefaultUDPMaxFlows)
	def(&u.MaxDatagramBytes, DefaultUDPMaxDatagram)
}

// setL4Defaults fills the [xdp] defaults ([listeners.udp] is filled by
// Listener.setDefaults).
func (c *Config) setL4Defaults() {
	if c.XDP.OverCap == "" {
		c.XDP.OverCap = DefaultXDPOverCap
	}
	for i := range c.XDP.Services {
		s := &c.XDP.Services[i]
		for j := range s.Backends {
			s.Backends[j].setDefaults()
		}
		if s.Name == "" {
			if s.Listener != "" {
				s.Name = s.Listener
			} else {
				s.Name = s.Protocol + "/" + net.JoinHostPort(s.VIP, strconv.Itoa(s.Port))
			}
		}
	}
}

// validateL4 checks [xdp] and every [listeners.udp].
func (c *Config) validateL4(ps *Problems) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Protocol != "udp" {
			continue
		}
		k := key(idx("listeners", i), "udp")
		rangeInt(ps, key(k, "idle_timeout_ms"), l.UDP.IdleTimeoutMs, 100, 86_400_000)
		rangeInt(ps, key(k, "max_flows"), l.UDP.MaxFlows, 1, 1_000_000)
		rangeInt(ps, key(k, "max_datagram_bytes"), l.UDP.MaxDatagramBytes, 512, 65_507)
	}
	x := &c.XDP
	switch x.OverCap {
	case "pass", "drop":
	default:
		ps.Addf("xdp.over_cap", "want \"pass\" or \"drop\", not %q", x.OverCap)
	}
	if x.SourceV4 != "" {
		if a, err := netip.ParseAddr(x.SourceV4); err != nil || !a.Is4() || a.IsUnspecified() {
			ps.Addf("xdp.source_v4", "not a usable IPv4 address: %q", x.SourceV4)
		}
	}
	if x.SourceV6 != "" {
		if a, err := netip.ParseAddr(x.SourceV6); err != nil || !a.Is6() || a.Is4In6() || a.IsUnspecified() {
			ps.Addf("xdp.source_v6", "not a usable IPv6 address: %q", x.SourceV6)
		}
	}
	if x.GatewayMAC != "" {
		if m, err := net.ParseMAC(x.GatewayMAC); err != nil || len(m) != 6 {
			ps.Addf("xdp.gateway_mac", "not a 6-byte Ethernet address: %q", x.GatewayMAC)
		}
	}
	if len(x.Deny) > MaxXDPDeny {
		ps.Addf("xdp.deny", "%d prefixes, the limit is %d", len(x.Deny), MaxXDPDeny)
	}
	for i, d := range x.Deny {
		if _, err := ParseCIDR(d); err != nil {
			ps.Addf(idx("xdp.deny", i), "not a CIDR or address: %q", d)
		}
	}
	if len(x.Services) > MaxXDPServices {
		ps.Addf("xdp.services", "%d services, the limit is %d", len(x.Services), MaxXDPServices)
	}
	pools := map[string]*Pool{}
	for i := range c.Pools {
		pools[c.Pools[i].Name] = &c.Pools[i]
	}
	listeners := map[string]*Listener{}
	for i := range c.Listeners {
		listeners[c.Listeners[i].Name] = &c.Listeners[i]
	}
	type id struct {
		vip   netip.Addr
		port  int
		proto string
	}
	seen := map[id]string{}
	needV4, needV6 := false, false
	for i := range x.Services {
		s := &x.Services[i]
		k := idx("xdp.services", i)
		vip, port, proto := netip.Addr{}, s.Port, s.Protocol
		var backends []Backend
		bkey := key(k, "backends")
		switch {
		case s.Listener != "":
			if s.VIP != "" || s.Port != 0 || s.Protocol != "" || len(s.Backends) > 0 || s.Pool != "" {
				ps.Addf(key(k, "listener"), "a listener service takes vip, port, protocol and backends from the listener: set none of them")
			}
			l, ok := listeners[s.Listener]
			if !ok {
				ps.Addf(key(k, "listener"), "no [[listeners]] entry is named %q", s.Listener)
				continue
			}
			if l.Protocol != "tcp" && l.Protocol != "udp" {
				ps.Addf(key(k, "listener"), "listener %q is %s: XDP balances tcp and udp listeners only", s.Listener, l.Protocol)
				continue
			}
			ap, err := netip.ParseAddrPort(l.Address)
			if err != nil || ap.Addr().IsUnspecified() {
				ps.Addf(key(k, "listener"), "listener %q address %q: the VIP must be an IP address, not a name or wildcard", s.Listener, l.Address)
				continue
			}
			vip, port, proto = ap.Addr().Unmap(), int(ap.Port()), l.Protocol
			backends = l.Backends
			bkey = "listeners." + s.Listener + ".backends"
			if l.Pool != "" {
				if p := pools[l.Pool]; p != nil {
					backends, bkey = p.Backends, "pools."+l.Pool+".backends"
				}
			}
		default:
			a, err := netip.ParseAddr(s.VIP)
			if err != nil || a.IsUnspecified() {
				ps.Addf(key(k, "vip"), "not an IP address: %q", s.VIP)
			} else {
				vip = a.Unmap()
			}
			rangeInt(ps, key(k, "port"), s.Port, 1, 65535)
			if s.Protocol != "tcp" && s.Protocol != "udp" {
				ps.Addf(key(k, "protocol"), "want tcp or udp, not %q", s.Protocol)
			}
			switch {
			case s.Pool != "" && len(s.Backends) > 0:
				ps.Addf(key(k, "pool"), "set either pool or backends, not both")
			case s.Pool != "":
				p, ok := pools[s.Pool]
				if !ok {
					ps.Addf(key(k, "pool"), "no [[pools]] entry is named %q", s.Pool)
				} else {
					backends, bkey = p.Backends, "pools."+s.Pool+".backends"
				}
			case len(s.Backends) == 0:
				ps.Addf(key(k, "backends"), "a service needs backends, a pool or a listener")
			default:
				backends = s.Backends
				for j := range s.Backends {
					s.Backends[j].validate(idx(bkey, j), ps)
				}
			}
		}
		if vip.IsValid() {
			sid := id{vip, port, proto}
			if prev, dup := seen[sid]; dup {
				ps.Addf(k, "%s %s is already %s", proto, netip.AddrPortFrom(vip, uint16(port)), prev)
			}
			seen[sid] = k
		}
		for j, b := range backends {
			ap, err := netip.ParseAddrPort(b.Address)
			if err != nil {
				ps.Addf(key(idx(bkey, j), "address"), "XDP service %s needs an IP:port backend address, got %q", s.Name, b.Address)
				continue
			}
			if port != 0 && int(ap.Port()) != port {
				ps.Addf(key(idx(bkey, j), "address"), "XDP forwards with direct server return, which keeps the port: backend port %d must be the service port %d", ap.Port(), port)
			}
			if ap.Addr().Unmap().Is4() {
				needV4 = true
			} else {
				needV6 = true
			}
		}
	}
	if c.Runtime.XDPEnabled && len(x.Services) > 0 {
		if needV4 && x.SourceV4 == "" {
			ps.Addf("xdp.source_v4", "required: some XDP backends are IPv4")
		}
		if needV6 && x.SourceV6 == "" {
			ps.Addf("xdp.source_v6", "required: some XDP backends are IPv6")
		}
	}
}

// ParseCIDR reads a deny-list or trusted-proxy entry: a CIDR, or an
// address meaning its host prefix.
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
