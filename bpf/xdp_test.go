package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// XDP verdicts as the kernel numbers them.
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
)

var verdictNames = map[uint32]string{xdpAborted: "ABORTED", xdpDrop: "DROP", xdpPass: "PASS", xdpTX: "TX"}

var (
	vip4    = netip.MustParseAddr("192.0.2.10")
	vip6    = netip.MustParseAddr("2001:db8::10")
	client4 = netip.MustParseAddr("198.51.100.7")
	client6 = netip.MustParseAddr("2001:db8:c::7")
	src4    = netip.MustParseAddr("10.0.0.1")
	src6    = netip.MustParseAddr("fd00::1")
	be4a    = netip.MustParseAddr("10.0.1.1")
	be4b    = netip.MustParseAddr("10.0.1.2")
	be6a    = netip.MustParseAddr("fd00:1::1")
	macBE   = net.HardwareAddr{0x02, 0, 0, 0, 1, 1}
)

// run sends frame through the program and returns the verdict and the
// frame as it left.
func run(t *testing.T, p *Program, frame []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Repeat: 1}
	ret, err := p.XDPProgram().Run(&opts)
	if err != nil {
		t.Fatalf("prog run: %v", err)
	}
	return ret, opts.DataOut
}

func wantVerdict(t *testing.T, p *Program, frame []byte, want uint32) []byte {
	t.Helper()
	got, out := run(t, p, frame)
	if got != want {
		t.Fatalf("verdict %s, want %s", verdictNames[got], verdictNames[want])
	}
	return out
}

func wantBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("frame differs\n got %x\nwant %x", got, want)
	}
}

// baseState has one TCP and one UDP service per family, each with a single
// backend so the choice is known.
func baseState() State {
	one := func(a netip.Addr) []Backend { return []Backend{{Addr: a, Weight: 1, MAC: macBE}} }
	return State{
		Services: []Service{
			{VIP: vip4, Port: 80, Proto: TCP, Backends: one(be4a)},
			{VIP: vip4, Port: 53, Proto: UDP, Backends: one(be4a)},
			{VIP: vip6, Port: 443, Proto: TCP, Backends: one(be6a)},
			{VIP: vip6, Port: 53, Proto: UDP, Backends: one(be6a)},
			{VIP: vip4, Port: 8080, Proto: TCP, Backends: one(be6a)}, // 4in6
			{VIP: vip6, Port: 8080, Proto: TCP, Backends: one(be4a)}, // 6in4
		},
		SourceV4:   src4,
		SourceV6:   src6,
		GatewayMAC: macGW,
	}
}

func loadApplied(t *testing.T, st State) *Program {
	t.Helper()
	p := loadForTest(t, Options{RingSize: 251})
	if err := p.Apply(st); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return p
}

func TestXDP_Forwards_ByteForByte(t *testing.T) {
	p := loadApplied(t, baseState())
	payload := []byte("hello, backend")
	for _, tc := range []struct {
		name     string
		proto    byte
		src, vip netip.Addr
		port     uint16
		flags    byte
		backend  netip.Addr
	}{
		{"ipip tcp syn", protoTCP, client4, vip4, 80, tcpSYN, be4a},
		{"ipip tcp ack", protoTCP, client4, vip4, 80, tcpACK, be4a},
		{"ipip udp", protoUDP, client4, vip4, 53, 0, be4a},
		{"ip6ip6 tcp syn", protoTCP, client6, vip6, 443, tcpSYN, be6a},
		{"ip6ip6 udp", protoUDP, client6, vip6, 53, 0, be6a},
		{"ipip6 tcp", protoTCP, client4, vip4, 8080, tcpSYN, be6a},
		{"sit tcp", protoTCP, client6, vip6, 8080, tcpSYN, be4a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := clientFrame(tc.proto, tc.src, tc.vip, 40000, tc.port, tc.flags, payload)
			src := src4
			if tc.backend.Is6() {
				src = src6
			}
			out := wantVerdict(t, p, in, xdpTX)
			wantBytes(t, out, encapsulated(in, src, tc.backend, macBE))
		})
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Reasons[ReasonForward].Packets; got != 7 {
		t.Errorf("forward packets = %d, want 7", got)
	}
	if got := st.Action(ActionTX).Packets; got != 7 || st.Total().Packets != 7 {
		t.Errorf("tx = %d, total = %d, want 7 and 7", got, st.Total().Packets)
	}
}

func TestXDP_IPv4Options_InnerKept(t *testing.T) {
	p := loadApplied(t, baseState())
	seg := tcpSegment(client4, vip4, 1234, 80, tcpSYN, nil)
	ip := ipv4Packet(client4, vip4, protoTCP, seg, ipv4Opts{options: []byte{1, 1, 1, 0}}) // NOPs, EOL
	in := ethFrame(macLB, macClient, ethIPv4, ip)
	out := wantVerdict(t, p, in, xdpTX)
	wantBytes(t, out, encapsulated(in, src4, be4a, macBE))
}

func TestXDP_IPv6ExtensionHeaders(t *testing.T) {
	p := loadApplied(t, baseState())
	seg := tcpSegment(client6, vip6, 1234, 443, tcpSYN, nil)
	// One hop-by-hop header (8 bytes: next, len 0, PadN of 4 + 2 bytes).
	hbh := append([]byte{protoTCP, 0, 1, 4, 0, 0, 0, 0}, seg...)
	in := ethFrame(macLB, macClient, ethIPv6, ipv6Packet(client6, vip6, 0, hbh, 0))
	out := wantVerdict(t, p, in, xdpTX)
	wantBytes(t, out, encapsulated(in, src6, be6a, macBE))

	// Five extension headers: more than the program walks.
	chain := seg
	next := byte(protoTCP)
	for range 5 {
		chain = append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, chain...)
		next = 60 // destination options
	}
	in = ethFrame(macLB, macClient, ethIPv6, ipv6Packet(client6, vip6, next, chain, 0))
	out = wantVerdict(t, p, in, xdpPass)
	wantBytes(t, out, in)
}

func TestXDP_NotService_PassesUntouched(t *testing.T) {
	p := loadApplied(t, baseState())
	for _, in := range [][]byte{
		clientFrame(protoTCP, client4, vip4, 1234, 22, tcpSYN, nil),                                       // other port
		clientFrame(protoUDP, client4, vip4, 1234, 80, 0, nil),                                            // other proto
		clientFrame(protoTCP, client4, be4b, 1234, 80, tcpSYN, nil),                                       // other address
		clientFrame(protoTCP, client6, vip6, 1234, 80, tcpACK, []byte("x")),                               // v6, other port
		ethFrame(macLB, macClient, ethIPv4, ipv4Packet(client4, vip4, 1, []byte{8, 0, 0, 0}, ipv4Opts{})), // ICMP
		ethFrame(macLB, macClient, ethARP, make([]byte, 28)),
		ethFrame(macLB, macClient, 0x8100, make([]byte, 64)), // VLAN tag
	} {
		out := wantVerdict(t, p, in, xdpPass)
		wantBytes(t, out, in)
	}
	st, _ := p.Stats()
	if st.Reasons[ReasonNotService].Packets != 5 || st.Reasons[ReasonNonIP].Packets != 2 {
		t.Errorf("stats: not_service %d (want 5), non_ip %d (want 2)", st.Reasons[ReasonNotService].Packets, st.Reasons[ReasonNonIP].Packets)
	}
}

func TestXDP_DenyList_DropsV4AndV6(t *testing.T) {
	st := baseState()
	st.Deny = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:c::/48")}
	p := loadApplied(t, st)

	wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1, 80, tcpSYN, nil), xdpDrop)
	wantVerdict(t, p, clientFrame(protoUDP, client6, vip6, 1, 53, 0, nil), xdpDrop)
	// Any traffic from a denied source, not only services; fragments too.
	wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1, 22, tcpSYN, nil), xdpDrop)
	frag := ethFrame(macLB, macClient, ethIPv4, ipv4Packet(client4, vip4, protoUDP, make([]byte, 16), ipv4Opts{fragOff: 10}))
	wantVerdict(t, p, frag, xdpDrop)
	// Neighbours outside the prefixes pass.
	wantVerdict(t, p, clientFrame(protoTCP, netip.MustParseAddr("198.51.101.7"), vip4, 1, 80, tcpSYN, nil), xdpTX)
	wantVerdict(t, p, clientFrame(protoTCP, netip.MustParseAddr("2001:db8:d::7"), vip6, 1, 443, tcpSYN, nil), xdpTX)

	stats, _ := p.Stats()
	if got := stats.Reasons[ReasonDeny].Packets; got != 4 {
		t.Errorf("deny = %d, want 4", got)
	}

	// A reload without the list lifts it.
	st.Deny = nil
	if err := p.Apply(st); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1, 80, tcpSYN, nil), xdpTX)
	wantVerdict(t, p, clientFrame(protoUDP, client6, vip6, 1, 53, 0, nil), xdpTX)
}

func TestXDP_RateCap(t *testing.T) {
	pinCPU(t)
	for _, action := range []OverCapAction{OverCapDrop, OverCapPass} {
		t.Run(action.String(), func(t *testing.T) {
			st := baseState()
			st.NewFlowRate = 3
			st.OverCap = action
			st.Guarded = []Listener{{Port: 8443, Proto: TCP}}
			p := loadApplied(t, st)
			over := uint32(xdpDrop)
			if action == OverCapPass {
				over = xdpPass
			}
			// Flow 1 is established before the cap is reached.
			ack1 := clientFrame(protoTCP, client4, vip4, 1001, 80, tcpACK, []byte("data"))
			wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1001, 80, tcpSYN, nil), xdpTX)
			wantVerdict(t, p, clientFrame(protoUDP, client4, vip4, 1002, 53, 0, nil), xdpTX)
			wantVerdict(t, p, clientFrame(protoTCP, client6, vip6, 1003, 443, tcpSYN, nil), xdpTX)
			// Over the cap: new flows of every kind get the over-cap action.
			wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1004, 80, tcpSYN, nil), over)
			wantVerdict(t, p, clientFrame(protoUDP, client4, vip4, 1005, 53, 0, nil), over)
			wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1006, 8443, tcpSYN, nil), over) // guarded
			// Known flows carry on.
			wantVerdict(t, p, ack1, xdpTX)
			wantVerdict(t, p, clientFrame(protoUDP, client4, vip4, 1002, 53, 0, []byte("more")), xdpTX)
			// Non-SYN to a guarded port, and unguarded ports, are not counted.
			wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1006, 8443, tcpACK, nil), xdpPass)
			wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1007, 22, tcpSYN, nil), xdpPass)

			stats, _ := p.Stats()
			reason := ReasonRateCapDrop
			if action == OverCapPass {
				reason = ReasonRateCapPass
			}
			if got := stats.Reasons[reason].Packets; got != 3 {
				t.Errorf("%s = %d, want 3", reason, got)
			}
		})
	}
}

func TestXDP_Fragments_Pass(t *testing.T) {
	p := loadApplied(t, baseState())
	seg := udpDatagram(client4, vip4, 1, 53, make([]byte, 32))
	for _, off := range []uint16{0x2000, 0x0001, 0x2010} { // MF; offset 8; both
		in := ethFrame(macLB, macClient, ethIPv4, ipv4Packet(client4, vip4, protoUDP, seg, ipv4Opts{fragOff: off}))
		wantBytes(t, wantVerdict(t, p, in, xdpPass), in)
	}
	// IPv6 fragment header, first fragment (offset 0, M set) and an atomic one.
	seg6 := udpDatagram(client6, vip6, 1, 53, make([]byte, 32))
	for _, offM := range []uint16{0x0001, 0x0000} {
		fh := []byte{protoUDP, 0, byte(offM >> 8), byte(offM), 0, 0, 0, 1}
		in := ethFrame(macLB, macClient, ethIPv6, ipv6Packet(client6, vip6, 44, append(fh, seg6...), 0))
		wantBytes(t, wantVerdict(t, p, in, xdpPass), in)
	}
	st, _ := p.Stats()
	if got := st.Reasons[ReasonFragment].Packets; got != 5 {
		t.Errorf("fragment = %d, want 5", got)
	}
}

func TestXDP_Truncated_Pass(t *testing.T) {
	p := loadApplied(t, baseState())
	for _, full := range [][]byte{
		clientFrame(protoTCP, client4, vip4, 1, 80, tcpSYN, []byte("abcdefgh")),
		clientFrame(protoUDP, client6, vip6, 1, 53, 0, []byte("abcdefgh")),
	} {
		// The kernel wants at least an Ethernet header; every shorter
		// frame than the whole is truncated somewhere.
		for n := 14; n < len(full); n++ {
			in := bytes.Clone(full[:n])
			got, out := run(t, p, in)
			if got != xdpPass || !bytes.Equal(out, in) {
				t.Fatalf("prefix %d/%d: verdict %s, frame changed %v", n, len(full), verdictNames[got], !bytes.Equal(out, in))
			}
		}
	}
}

func TestXDP_Malformed_Pass(t *testing.T) {
	p := loadApplied(t, baseState())
	seg := tcpSegment(client4, vip4, 1, 80, tcpSYN, nil)
	good := ipv4Packet(client4, vip4, protoTCP, seg, ipv4Opts{})
	bad := func(mut func(b []byte)) []byte {
		b := bytes.Clone(good)
		mut(b)
		return ethFrame(macLB, macClient, ethIPv4, b)
	}
	cases := map[string][]byte{
		"ihl 4":          bad(func(b []byte) { b[0] = 0x44 }),
		"version 6":      bad(func(b []byte) { b[0] = 0x65 }),
		"ihl past end":   bad(func(b []byte) { b[0] = 0x4f }),
		"total < header": bad(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 10) }),
		"total > frame":  bad(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 1000) }),
		"tcp cut by total": bad(func(b []byte) {
			binary.BigEndian.PutUint16(b[2:], 30)
		}),
		"v6 jumbo": ethFrame(macLB, macClient, ethIPv6, func() []byte {
			b := ipv6Packet(client6, vip6, protoTCP, tcpSegment(client6, vip6, 1, 443, tcpSYN, nil), 0)
			b[4], b[5] = 0, 0
			return b
		}()),
	}
	for name, in := range cases {
		got, out := run(t, p, in)
		if got != xdpPass || !bytes.Equal(out, in) {
			t.Errorf("%s: verdict %s, changed %v", name, verdictNames[got], !bytes.Equal(out, in))
		}
	}
	// Ethernet padding after a valid datagram is fine: forwarded.
	padded := append(clientFrame(protoUDP, client4, vip4, 1, 53, 0, nil), make([]byte, 10)...)
	wantVerdict(t, p, padded, xdpTX)
}

func TestXDP_Garbage_NeverCrashes(t *testing.T) {
	p := loadApplied(t, baseState())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		n := 14 + rng.IntN(200)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		switch i % 3 { // steer most frames into the IP parsers
		case 0:
			binary.BigEndian.PutUint16(b[12:], ethIPv4)
			if n > 14 {
				b[14] = 0x45
			}
		case 1:
			binary.BigEndian.PutUint16(b[12:], ethIPv6)
			if n > 14 {
				b[14] = 0x60
			}
		}
		got, _ := run(t, p, b)
		if got != xdpPass && got != xdpDrop && got != xdpTX {
			t.Fatalf("frame %x: verdict %d", b, got)
		}
	}
}

func TestXDP_NoBackend_Pass(t *testing.T) {
	st := baseState()
	st.Services[0].Backends[0].Weight = 0 // drained: nothing left
	p := loadApplied(t, st)
	in := clientFrame(protoTCP, client4, vip4, 1, 80, tcpSYN, nil)
	wantBytes(t, wantVerdict(t, p, in, xdpPass), in)
}

func TestXDP_TooBig_Pass(t *testing.T) {
	st := baseState()
	st.MTU = 100
	p := loadApplied(t, st)
	small := clientFrame(protoUDP, client4, vip4, 1, 53, 0, make([]byte, 80-28))
	wantVerdict(t, p, small, xdpTX) // 80 + 20 = 100: fits
	big := clientFrame(protoUDP, client4, vip4, 1, 53, 0, make([]byte, 81-28))
	wantBytes(t, wantVerdict(t, p, big, xdpPass), big)
}

func TestApply_SourceV6_OnlyWhenNeeded(t *testing.T) {
	st := baseState()
	st.Services = st.Services[:2] // IPv4 backends only
	st.SourceV6 = netip.Addr{}
	p := loadApplied(t, st)
	wantVerdict(t, p, clientFrame(protoTCP, client4, vip4, 1, 80, tcpSYN, nil), xdpTX)
}

// backendOf returns the outer destination of a forwarded IPv4 frame.
func backendOf(t *testing.T, p *Program, frame []byte) netip.Addr {
	t.Helper()
	out := wantVerdict(t, p, frame, xdpTX)
	return netip.AddrFrom4([4]byte(out[14+16 : 14+20]))
}

func TestXDP_Conntrack_FlowsStick(t *testing.T) {
	backends := func(addrs ...netip.Addr) []Backend {
		var bs []Backend
		for _, a := range addrs {
			bs = append(bs, Backend{Addr: a, Weight: 1, MAC: macBE})
		}
		return bs
	}
	var pool []netip.Addr
	for i := range 4 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}))
	}
	st := State{SourceV4: src4, Services: []Service{{VIP: vip4, Port: 80, Proto: TCP, Backends: backends(pool[:3]...)}}}
	p := loadApplied(t, st)

	const flows = 300
	before := make([]netip.Addr, flows)
	for i := range flows {
		before[i] = backendOf(t, p, clientFrame(protoTCP, client4, vip4, uint16(2000+i), 80, tcpSYN, nil))
	}
	// A fourth backend joins: pinned flows stay, whatever the ring says now.
	st.Services[0].Backends = backends(pool...)
	if err := p.Apply(st); err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if got := backendOf(t, p, clientFrame(protoTCP, client4, vip4, uint16(2000+i), 80, tcpACK, nil)); got != before[i] {
			t.Fatalf("flow %d moved from %s to %s when a backend was added", i, before[i], got)
		}
	}
	// pool[0] leaves: its flows move, the others stay.
	st.Services[0].Backends = backends(pool[1:]...)
	if err := p.Apply(st); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range flows {
		got := backendOf(t, p, clientFrame(protoTCP, client4, vip4, uint16(2000+i), 80, tcpACK, nil))
		switch {
		case before[i] == pool[0]:
			moved++
			if got == pool[0] {
				t.Fatalf("flow %d still goes to the removed backend", i)
			}
		case got != before[i]:
			t.Fatalf("flow %d moved from %s to %s though its backend stayed", i, before[i], got)
		}
	}
	if moved == 0 {
		t.Fatalf("no flow was on the removed backend: test proves nothing")
	}
}

func TestXDP_Weights_Spread(t *testing.T) {
	pinCPU(t)
	st := State{SourceV4: src4, Services: []Service{{VIP: vip4, Port: 80, Proto: TCP, Backends: []Backend{
		{Addr: be4a, Weight: 1, MAC: macBE},
		{Addr: be4b, Weight: 3, MAC: macBE},
	}}}}
	p := loadForTest(t, Options{}) // full-size ring
	if err := p.Apply(st); err != nil {
		t.Fatal(err)
	}
	const flows = 4000
	n := map[netip.Addr]int{}
	for i := range flows {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		n[backendOf(t, p, clientFrame(protoTCP, src, vip4, uint16(1024+i), 80, tcpSYN, nil))]++
	}
	share := float64(n[be4b]) / flows
	if share < 0.70 || share > 0.80 {
		t.Fatalf("weight-3 backend got %.3f of flows, want 0.75 ± 0.05 (%v)", share, n)
	}
}

func TestApply_Validates(t *testing.T) {
	opts := Options{}
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mut  func(*State)
		want string
	}{
		"no vip":          {func(s *State) { s.Services[0].VIP = netip.Addr{} }, "no VIP"},
		"port 0":          {func(s *State) { s.Services[0].Port = 0 }, "port 0"},
		"bad proto":       {func(s *State) { s.Services[0].Proto = 1 }, "tcp or udp"},
		"duplicate":       {func(s *State) { s.Services = append(s.Services, s.Services[0]) }, "listed twice"},
		"no mac":          {func(s *State) { s.GatewayMAC = nil; s.Services[0].Backends[0].MAC = nil }, "no next-hop MAC"},
		"no source v4":    {func(s *State) { s.SourceV4 = netip.Addr{} }, "source_v4: required"},
		"v6 as source v4": {func(s *State) { s.SourceV4 = src6 }, "source_v4"},
		"dup backend":     {func(s *State) { s.Services[0].Backends = append(s.Services[0].Backends, s.Services[0].Backends[0]) }, "listed twice"},
		"bad guarded":     {func(s *State) { s.Guarded = []Listener{{Port: 0, Proto: TCP}} }, "guarded[0]"},
	} {
		st := baseState()
		tc.mut(&st)
		_, err := st.validate(opts)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
	good := baseState()
	if _, err := good.validate(opts); err != nil {
		t.Fatalf("base state: %v", err)
	}
}

func TestReasons_MatchKernelEnum(t *testing.T) {
	if int(NumReasons) != int(lbStatReasonSTAT_MAX) {
		t.Fatalf("NumReasons %d, kernel STAT_MAX %d", NumReasons, lbStatReasonSTAT_MAX)
	}
	kernel := map[Reason]lbStatReason{
		ReasonForward: lbStatReasonSTAT_FORWARD, ReasonNonIP: lbStatReasonSTAT_NON_IP,
		ReasonMalformed: lbStatReasonSTAT_MALFORMED, ReasonFragment: lbStatReasonSTAT_FRAGMENT,
		ReasonUnsupported: lbStatReasonSTAT_UNSUPPORTED, ReasonNotService: lbStatReasonSTAT_NOT_SERVICE,
		ReasonNoBackend: lbStatReasonSTAT_NO_BACKEND, ReasonNoSource: lbStatReasonSTAT_NO_SOURCE,
		ReasonTooBig: lbStatReasonSTAT_TOO_BIG, ReasonRateCapPass: lbStatReasonSTAT_RATE_CAP_PASS,
		ReasonRateCapDrop: lbStatReasonSTAT_RATE_CAP_DROP, ReasonDeny: lbStatReasonSTAT_DENY,
		ReasonEncapError: lbStatReasonSTAT_ENCAP_ERROR,
	}
	for r := range NumReasons {
		k, ok := kernel[r]
		if !ok || Reason(k) != r {
			t.Errorf("reason %s: kernel value %d", r, k)
		}
		if r.String() == fmt.Sprintf("reason(%d)", r) {
			t.Errorf("reason %d has no name", r)
		}
	}
}

// TableHashes reports, per service, the fingerprint of the table Apply
// built, and follows a reload that changes it.
func TestProgram_TableHashesFollowApply(t *testing.T) {
	p := loadForTest(t, Options{RingSize: 251})
	st := baseState()
	st.Services = []Service{{VIP: vip4, Port: 80, Proto: TCP, Backends: []Backend{
		{Addr: be4a, Weight: 1, MAC: macBE}, {Addr: be4b, Weight: 1, MAC: macBE},
	}}}
	want := func(weights []uint32) uint32 {
		names := []string{be4a.String(), be4b.String()}
		return MaglevTableHash(names, MaglevTable(names, weights, 251))
	}
	for _, w := range [][]uint32{{1, 1}, {1, 0}} {
		st.Services[0].Backends[1].Weight = w[1]
		if err := p.Apply(st); err != nil {
			t.Fatal(err)
		}
		got := p.TableHashes()
		if len(got) != 1 || got[0].VIP != vip4 || got[0].Port != 80 || got[0].Proto != TCP || got[0].Hash != want(w) {
			t.Fatalf("weights %v: %+v, want one tcp %s:80 with hash %#x", w, got, vip4, want(w))
		}
	}
}
