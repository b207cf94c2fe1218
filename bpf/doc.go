// Package bpf is the XDP L4 fast path: the C program (lb.c and its headers,
// compiled by bpf2go into the committed lb_bpfel.o), its loader, and the
// map management that turns a State into kernel tables.
//
// In the kernel, for each service (VIP, port, TCP or UDP; IPv4 or IPv6) a
// Maglev table picks a backend per flow, an LRU connection table keeps a
// flow on its backend while the backend set changes, and the packet leaves
// IP-in-IP encapsulated toward the backend (direct server return). In front
// of that sit an LPM deny list per address family and a per-CPU new-flow
// rate cap. Fragments, malformed and non-IP frames, and traffic for ports
// that are not services pass to the kernel untouched.
//
// Userspace use:
//
//	p, err := bpf.Load(bpf.Options{})      // *UnavailableError: fall back to userspace L4
//	err = p.Attach("eth0", bpf.ModeAuto)  // *UnavailableError likewise
//	err = p.Apply(state)                  // again on every reload; never detaches
//	st, err := p.Stats()
//	p.Close()
//
// State.GatewayMAC or Backend.MAC name the next hop; ResolveNextHop reads
// it from the kernel's route and neighbour tables. Backends decapsulate
// with ipip/ip6tnl devices, or, on kernels without them, with Decap, the
// small XDP decapsulator in decap.c. Package bpf/lbnet builds the network
// namespaces the tests and bench/xdp run in.
//
// Regenerate the objects with `go generate ./bpf` or scripts/gen-bpf.sh;
// `scripts/gen-bpf.sh check` fails when the committed ones differ from a
// fresh build.
//
// MaglevTable is the one Maglev implementation of the project: the
// userspace L4 relays and the L7 maglev picker call it too.
//
// Allowed imports: cilium/ebpf, vishvananda/netlink, x/sys.
package bpf
