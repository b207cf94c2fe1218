package lbnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Addresses of the ECMP topology (BuildECMP). The client sits behind the
// router on its own link; instances and backends share the bridged
// segment, as in Build.
var (
	ECMPClientAddr4     = netip.MustParseAddr("10.200.1.1")
	ECMPRouterLinkAddr4 = netip.MustParseAddr("10.200.1.254") // the router, on the client's link
	ECMPRouterAddr4     = netip.MustParseAddr("10.200.0.254") // the router, on the segment
)

// Instance is one balancer instance host behind the router.
type Instance struct {
	NS    NS
	Addr4 netip.Addr
	MAC   net.HardwareAddr
}

// ECMP is a topology for several balancer instances behind one router:
// the client reaches VIP4 through the router, whose multipath route
// spreads flows over the instances by a hash of their 5-tuple, as a ToR
// switch does with a VIP every instance announces. Instances and backends are on one bridged segment;
// every backend owns the VIPs on lo and answers the client directly
// through the router (direct server return). Instances own VIP4 only
// after LocalVIP: a userspace listener needs it, XDP does not (and an
// instance whose XDP program is gone then drops the VIP's packets
// instead of resetting them).
type ECMP struct {
	lab
	Client    NS
	Router    NS
	Instances []Instance
	Backends  []Backend
	// TunnelDevices: as Net.TunnelDevices.
	TunnelDevices bool
}

// BuildECMP creates the namespaces and routes VIP4 over every instance.
// On error everything made so far is removed. The caller must Close it.
func BuildECMP(instances, backends int) (e *ECMP, err error) {
	if instances < 1 || instances > 8 || backends < 1 || backends > 50 {
		return nil, fmt.Errorf("lbnet: %d instances, %d backends: want 1..8 and 1..50", instances, backends)
	}
	e = &ECMP{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
			e = nil
		}
	}()
	if err := e.open(); err != nil {
		return e, err
	}
	mk := e.mk
	if e.Router, err = mk("r"); err != nil {
		return e, err
	}
	if err := plug(e.Switch, e.Router, "r", segmentMTU, ECMPRouterAddr4); err != nil {
		return e, err
	}
	if e.Client, err = mk("c"); err != nil {
		return e, err
	}
	// The client's link: eth1 in the router, eth0 in the client.
	if err := e.Router.IPSteps([][]string{
		{"link", "add", "eth1", "mtu", clientMTU, "type", "veth", "peer", "name", Ifname, "netns", e.Client.Name},
		{"addr", "add", ECMPRouterLinkAddr4.String() + "/24", "dev", "eth1"},
		{"link", "set", "eth1", "up"},
	}); err != nil {
		return e, err
	}
	if err := e.Client.IPSteps([][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", ECMPClientAddr4.String() + "/24", "dev", Ifname},
		{"link", "set", Ifname, "up"},
		{"route", "add", "default", "via", ECMPRouterLinkAddr4.String()},
	}); err != nil {
		return e, err
	}
	if err := e.Router.Sysctls(map[string]string{
		"net/ipv4/ip_forward": "1",
		// The L4 hash from the headers: a flow's 5-tuple (source and
		// destination address and port, protocol) picks its next hop.
		// Policy 1 would take the hash a local sender's socket left on
		// the packet (sk_txhash) instead, which a router in another box
		// never sees: in this one kernel, TCP's rehash on a
		// retransmission timeout would move a flow to another instance.
		"net/ipv4/fib_multipath_hash_policy": "3",
		"net/ipv4/fib_multipath_hash_fields": "0x0037",
		// Backends answer from the VIP (DSR), which the router routes
		// toward the instances: no reverse-path check on those replies.
		"net/ipv4/conf/all/rp_filter":     "0",
		"net/ipv4/conf/default/rp_filter": "0",
		"net/ipv4/conf/eth0/rp_filter":    "0",
		"net/ipv4/conf/eth1/rp_filter":    "0",
	}); err != nil {
		return e, err
	}
	for i := range instances {
		in := Instance{Addr4: netip.AddrFrom4([4]byte{10, 200, 0, byte(2 + i)})}
		role := fmt.Sprintf("i%d", i+1)
		if in.NS, err = mk(role); err != nil {
			return e, err
		}
		if err := plug(e.Switch, in.NS, role, segmentMTU, in.Addr4); err != nil {
			return e, err
		}
		if in.MAC, err = in.NS.MAC(Ifname); err != nil {
			return e, err
		}
		if err := in.NS.IP("route", "add", "default", "via", ECMPRouterAddr4.String()); err != nil {
			return e, err
		}
		if err := in.NS.Sysctls(map[string]string{
			"net/ipv4/conf/all/arp_ignore":   "1",
			"net/ipv4/conf/all/arp_announce": "2",
		}); err != nil {
			return e, err
		}
		e.Instances = append(e.Instances, in)
	}
	e.TunnelDevices = true
	for i := range backends {
		b := Backend{
			Addr4: netip.AddrFrom4([4]byte{10, 200, 0, byte(11 + i)}),
			Addr6: netip.MustParseAddr(fmt.Sprintf("fd00:200::%x", 0x11+i)),
		}
		role := fmt.Sprintf("b%d", i+1)
		if b.NS, err = mk(role); err != nil {
			return e, err
		}
		if err := plug(e.Switch, b.NS, role, segmentMTU, b.Addr4, b.Addr6); err != nil {
			return e, err
		}
		if b.MAC, err = b.NS.MAC(Ifname); err != nil {
			return e, err
		}
		tun, err := setupBackend(b)
		if err != nil {
			return e, err
		}
		if err := b.NS.IP("route", "add", "default", "via", ECMPRouterAddr4.String()); err != nil {
			return e, err
		}
		e.TunnelDevices = e.TunnelDevices && tun
		e.Backends = append(e.Backends, b)
	}
	if err := e.staticNeighbours(); err != nil {
		return e, err
	}
	all := make([]int, instances)
	for i := range all {
		all[i] = i
	}
	return e, e.Route(all...)
}

// LocalVIP puts VIP4 on every instance's lo, for listeners bound to it.
func (e *ECMP) LocalVIP() error {
	for _, in := range e.Instances {
		if err := in.NS.IP("addr", "add", VIP4.String()+"/32", "dev", "lo"); err != nil {
			return err
		}
	}
	return nil
}

// Route points the router's multipath route to VIP4 at the instances
// listed (indexes into Instances), replacing the previous set: what a
// routing daemon does when an instance stops announcing the VIP.
func (e *ECMP) Route(instances ...int) error {
	if len(instances) == 0 {
		return errors.New("lbnet: route: no instance")
	}
	args := []string{"route", "replace", VIP4.String() + "/32"}
	for _, i := range instances {
		if i < 0 || i >= len(e.Instances) {
			return fmt.Errorf("lbnet: route: no instance %d", i)
		}
		args = append(args, "nexthop", "via", e.Instances[i].Addr4.String(), "dev", Ifname)
	}
	return e.Router.IP(args...)
}

// staticNeighbours pins the ARP entries the paths need, so that no
// first packet waits on resolution: the router and the client know each
// other, the router and every host of the segment know each other, and
// instances know the backends.
func (e *ECMP) staticNeighbours() error {
	add := func(ns NS, dev string, a netip.Addr, mac net.HardwareAddr) error {
		return ns.IP("neigh", "replace", a.String(), "lladdr", mac.String(), "dev", dev, "nud", "permanent")
	}
	clientMAC, err := e.Client.MAC(Ifname)
	if err != nil {
		return err
	}
	routerLinkMAC, err := e.Router.MAC("eth1")
	if err != nil {
		return err
	}
	routerMAC, err := e.Router.MAC(Ifname)
	if err != nil {
		return err
	}
	if err := add(e.Client, Ifname, ECMPRouterLinkAddr4, routerLinkMAC); err != nil {
		return err
	}
	if err := add(e.Router, "eth1", ECMPClientAddr4, clientMAC); err != nil {
		return err
	}
	for _, in := range e.Instances {
		if err := add(e.Router, Ifname, in.Addr4, in.MAC); err != nil {
			return err
		}
		if err := add(in.NS, Ifname, ECMPRouterAddr4, routerMAC); err != nil {
			return err
		}
		for _, b := range e.Backends {
			if err := add(in.NS, Ifname, b.Addr4, b.MAC); err != nil {
				return err
			}
			if err := add(b.NS, Ifname, in.Addr4, in.MAC); err != nil {
				return err
			}
		}
	}
	for _, b := range e.Backends {
		if err := add(e.Router, Ifname, b.Addr4, b.MAC); err != nil {
			return err
		}
		if err := add(b.NS, Ifname, ECMPRouterAddr4, routerMAC); err != nil {
			return err
		}
	}
	return nil
}
