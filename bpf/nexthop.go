package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// resolvePoll is how often ResolveNextHop rereads the neighbour table.
const resolvePoll = 20 * time.Millisecond

// ResolveNextHop finds the Ethernet address the balancer must send to for
// a backend at addr: the neighbour entry of the route's gateway, or of addr
// itself when it is on-link. If the kernel has no entry yet it provokes
// resolution (one UDP datagram to the discard port) and waits up to
// timeout. It works in the calling thread's network namespace. Use it to
// fill State.GatewayMAC or Backend.MAC; call it again on reload, since
// neighbours change.
func ResolveNextHop(addr netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	addr = addr.Unmap()
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil {
		return nil, fmt.Errorf("bpf: next hop for %s: route: %w", addr, err)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("bpf: next hop for %s: no route", addr)
	}
	hop, link := addr, routes[0].LinkIndex
	if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && !gw.IsUnspecified() {
		hop = gw.Unmap()
	}
	fam := netlink.FAMILY_V4
	if hop.Is6() {
		fam = netlink.FAMILY_V6
	}
	deadline := time.Now().Add(timeout)
	for probed := false; ; {
		neighs, err := netlink.NeighList(link, fam)
		if err != nil {
			return nil, fmt.Errorf("bpf: next hop for %s: neighbours: %w", addr, err)
		}
		for _, n := range neighs {
			ip, _ := netip.AddrFromSlice(n.IP)
			usable := n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0
			if ip.Unmap() == hop && usable && len(n.HardwareAddr) == 6 {
				return n.HardwareAddr, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bpf: next hop for %s: %s did not resolve in %s", addr, hop, timeout)
		}
		if !probed {
			probed = true
			if err := probe(hop); err != nil {
				return nil, fmt.Errorf("bpf: next hop for %s: %w", addr, err)
			}
		}
		time.Sleep(resolvePoll)
	}
}

// probe sends one datagram to hop's discard port (RFC 863), which makes
// the kernel resolve its link-layer address.
func probe(hop netip.Addr) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(hop, 9)))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(nil); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
