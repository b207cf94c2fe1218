package lbnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Addresses of the test segment. They live only inside the namespaces.
var (
	ClientAddr4 = netip.MustParseAddr("10.200.0.1")
	ClientAddr6 = netip.MustParseAddr("fd00:200::1")
	// DeniedAddr4 and DeniedAddr6 are second client addresses, for deny
	// tests.
	DeniedAddr4 = netip.MustParseAddr("10.200.0.99")
	DeniedAddr6 = netip.MustParseAddr("fd00:200::99")
	LBAddr4     = netip.MustParseAddr("10.200.0.2")
	LBAddr6     = netip.MustParseAddr("fd00:200::2")
	VIP4        = netip.MustParseAddr("10.200.100.1")
	VIP6        = netip.MustParseAddr("fd00:200:100::1")
)

// Ifname is the interface name of every host on the segment.
const Ifname = "eth0"

// segmentMTU leaves room for the outer header on the balancer→backend
// leg; the client keeps 1500, so its packets always fit once encapsulated.
const (
	segmentMTU = "1600"
	clientMTU  = "1500"
)

// Backend is one backend host.
type Backend struct {
	NS           NS
	Addr4, Addr6 netip.Addr
	MAC          net.HardwareAddr
}

// Net is the topology: a bridge (in its own namespace) joining the client,
// the balancer and the backends. The client routes the VIPs via the
// balancer; backends own the VIPs on lo and answer the client directly.
type Net struct {
	lab
	Client   NS
	LB       NS
	LBMAC    net.HardwareAddr
	Backends []Backend
	// TunnelDevices says the backends decapsulate with ipip/ip6tnl
	// devices; false means the kernel has none and the caller must attach
	// a decapsulator (bpf.Decap) to each backend's Ifname.
	TunnelDevices bool
}

// Build creates the namespaces. On error everything made so far is
// removed. The caller must Close the Net.
func Build(backends int) (n *Net, err error) {
	if backends < 1 || backends > 50 {
		return nil, fmt.Errorf("lbnet: %d backends: want 1..50", backends)
	}
	n = &Net{}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
			n = nil
		}
	}()
	if err := n.open(); err != nil {
		return n, err
	}
	mk := n.mk
	if n.Client, err = mk("c"); err != nil {
		return n, err
	}
	if err := n.plug(n.Client, "c", clientMTU, ClientAddr4, ClientAddr6, DeniedAddr4, DeniedAddr6); err != nil {
		return n, err
	}
	for _, r := range [][]string{
		{"route", "add", VIP4.String() + "/32", "via", LBAddr4.String()},
		{"-6", "route", "add", VIP6.String() + "/128", "via", LBAddr6.String()},
	} {
		if err := n.Client.IP(r...); err != nil {
			return n, err
		}
	}
	if n.LB, err = mk("lb"); err != nil {
		return n, err
	}
	if err := n.plug(n.LB, "lb", segmentMTU, LBAddr4, LBAddr6); err != nil {
		return n, err
	}
	if n.LBMAC, err = n.LB.MAC(Ifname); err != nil {
		return n, err
	}
	n.TunnelDevices = true
	for i := range backends {
		b := Backend{
			Addr4: netip.AddrFrom4([4]byte{10, 200, 0, byte(11 + i)}),
			Addr6: netip.MustParseAddr(fmt.Sprintf("fd00:200::%x", 0x11+i)),
		}
		role := fmt.Sprintf("b%d", i+1)
		if b.NS, err = mk(role); err != nil {
			return n, err
		}
		if err := n.plug(b.NS, role, segmentMTU, b.Addr4, b.Addr6); err != nil {
			return n, err
		}
		if b.MAC, err = b.NS.MAC(Ifname); err != nil {
			return n, err
		}
		tun, err := setupBackend(b)
		if err != nil {
			return n, err
		}
		n.TunnelDevices = n.TunnelDevices && tun
		n.Backends = append(n.Backends, b)
	}
	return n, n.staticNeighbours()
}

// staticNeighbours pins the ARP/ND entries the paths need, so no test
// waits on (or loses a first packet to) neighbour resolution: the client
// knows the balancer, every backend knows the client.
func (n *Net) staticNeighbours() error {
	clientMAC, err := n.Client.MAC(Ifname)
	if err != nil {
		return err
	}
	add := func(ns NS, a netip.Addr, mac net.HardwareAddr) error {
		return ns.IP("neigh", "replace", a.String(), "lladdr", mac.String(), "dev", Ifname, "nud", "permanent")
	}
	for _, a := range []netip.Addr{LBAddr4, LBAddr6} {
		if err := add(n.Client, a, n.LBMAC); err != nil {
			return err
		}
	}
	for _, b := range n.Backends {
		for _, a := range []netip.Addr{ClientAddr4, ClientAddr6, DeniedAddr4, DeniedAddr6} {
			if err := add(b.NS, a, clientMAC); err != nil {
				return err
			}
		}
	}
	return nil
}

// plug gives ns a veth on the bridge named Ifname, with the addresses.
func (n *Net) plug(ns NS, port, mtu string, addrs ...netip.Addr) error {
	return plug(n.Switch, ns, port, mtu, addrs...)
}

// plug gives ns a veth named Ifname on the bridge br0 of sw, with the
// addresses.
func plug(sw, ns NS, port, mtu string, addrs ...netip.Addr) error {
	steps := [][]string{
		{"link", "add", port, "mtu", segmentMTU, "type", "veth", "peer", "name", Ifname, "netns", ns.Name},
		{"link", "set", port, "master", "br0", "up"},
	}
	if err := sw.IPSteps(steps); err != nil {
		return err
	}
	steps = [][]string{
		{"link", "set", "lo", "up"},
		{"link", "set", Ifname, "mtu", mtu, "up"},
	}
	for _, a := range addrs {
		if a.Is4() {
			steps = append(steps, []string{"addr", "add", a.String() + "/24", "dev", Ifname})
		} else {
			// nodad: usable at once, no duplicate detection wait.
			steps = append(steps, []string{"addr", "add", a.String() + "/64", "dev", Ifname, "nodad"})
		}
	}
	return ns.IPSteps(steps)
}

// setupBackend puts the VIPs on lo, relaxes reverse-path and ARP settings
// for direct server return, and creates tunnel devices when the kernel
// has them (reporting whether it did).
func setupBackend(b Backend) (bool, error) {
	if err := b.NS.IPSteps([][]string{
		{"addr", "add", VIP4.String() + "/32", "dev", "lo"},
		{"addr", "add", VIP6.String() + "/128", "dev", "lo"},
	}); err != nil {
		return false, err
	}
	if err := b.NS.Sysctls(map[string]string{
		// The inner source (the client) arrives on a tunnel or via XDP
		// decap; strict reverse-path filtering would drop it.
		"net/ipv4/conf/all/rp_filter":     "0",
		"net/ipv4/conf/default/rp_filter": "0",
		"net/ipv4/conf/eth0/rp_filter":    "0",
		// Never answer ARP for the VIP, never source ARP from it.
		"net/ipv4/conf/all/arp_ignore":   "1",
		"net/ipv4/conf/all/arp_announce": "2",
	}); err != nil {
		return false, err
	}
	err := b.NS.IP("link", "add", "eg-ipip", "type", "ipip", "local", b.Addr4.String())
	if err != nil {
		if strings.Contains(err.Error(), "Unknown device type") {
			return false, nil // no CONFIG_NET_IPIP: the caller decapsulates in XDP
		}
		return false, err
	}
	if err := b.NS.IPSteps([][]string{
		{"link", "set", "eg-ipip", "up"},
		{"link", "add", "eg-ip6tnl", "type", "ip6tnl", "mode", "any", "local", b.Addr6.String(), "remote", "::"},
		{"link", "set", "eg-ip6tnl", "up"},
	}); err != nil {
		return false, err
	}
	if err := b.NS.Sysctl("net/ipv4/conf/eg-ipip/rp_filter", "0"); err != nil {
		return false, err
	}
	return true, nil
}
