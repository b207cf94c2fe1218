package fuzz

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/expressgateway/expressgateway/bpf"
)

// XDP verdicts as the kernel numbers them.
const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3
)

var (
	fuzzVIP4 = netip.MustParseAddr("192.0.2.10")
	fuzzVIP6 = netip.MustParseAddr("2001:db8::10")
)

// FuzzXDPPacket runs random frames through the XDP balancer with
// BPF_PROG_TEST_RUN: the verdict is always PASS, DROP or TX, a passed
// frame is untouched, and a transmitted one grew by exactly one outer
// IPv4 or IPv6 header. Needs root; skips otherwise (fails under
// EG_REQUIRE_PRIVILEGED=1).
func FuzzXDPPacket(f *testing.F) {
	p, err := bpf.Load(bpf.Options{RingSize: 251})
	if err != nil {
		if bpf.IsUnavailable(err) {
			if os.Getenv("EG_REQUIRE_PRIVILEGED") == "1" {
				f.Fatalf("XDP unavailable and EG_REQUIRE_PRIVILEGED=1: %v", err)
			}
			f.Skipf("needs root with CAP_BPF and XDP (EG_REQUIRE_PRIVILEGED=1 makes this a failure): %v", err)
		}
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	be := func(a string) []bpf.Backend {
		return []bpf.Backend{{Addr: netip.MustParseAddr(a), Weight: 1}, {Addr: netip.MustParseAddr(a).Next(), Weight: 2}}
	}
	err = p.Apply(bpf.State{
		Services: []bpf.Service{
			{VIP: fuzzVIP4, Port: 80, Proto: bpf.TCP, Backends: be("10.0.1.1")},
			{VIP: fuzzVIP4, Port: 53, Proto: bpf.UDP, Backends: be("fd00:1::1")},
			{VIP: fuzzVIP6, Port: 443, Proto: bpf.TCP, Backends: be("fd00:1::1")},
			{VIP: fuzzVIP6, Port: 53, Proto: bpf.UDP, Backends: be("10.0.1.1")},
		},
		Guarded:     []bpf.Listener{{Port: 8443, Proto: bpf.TCP}},
		Deny:        []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:bad::/48")},
		SourceV4:    netip.MustParseAddr("10.0.0.1"),
		SourceV6:    netip.MustParseAddr("fd00::1"),
		GatewayMAC:  mac,
		NewFlowRate: 1000,
		OverCap:     bpf.OverCapDrop,
	})
	if err != nil {
		f.Fatal(err)
	}

	for _, seed := range xdpSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 4096 {
			return // the kernel refuses test frames shorter than Ethernet
		}
		ret, out, err := p.TestRun(bytes.Clone(frame))
		if err != nil {
			t.Fatal(err)
		}
		switch ret {
		case xdpPass:
			if !bytes.Equal(out, frame) {
				t.Fatalf("PASS changed the frame\n in %x\nout %x", frame, out)
			}
		case xdpDrop:
		case xdpTX:
			grew := len(out) - len(frame)
			if grew != 20 && grew != 40 {
				t.Fatalf("TX frame grew by %d bytes", grew)
			}
			if !bytes.Equal(out[14+grew:], frame[14:]) {
				t.Fatalf("TX changed the inner packet")
			}
		default:
			t.Fatalf("verdict %d out of range for frame %x", ret, frame)
		}
	})
}

// xdpSeeds are valid and near-valid frames for every path.
func xdpSeeds() [][]byte {
	eth := func(etype uint16, payload []byte) []byte {
		b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 3, byte(etype >> 8), byte(etype)}
		return append(b, payload...)
	}
	l4 := func(proto byte, sport, dport uint16, flags byte) []byte {
		if proto == 6 {
			b := make([]byte, 20)
			binary.BigEndian.PutUint16(b, sport)
			binary.BigEndian.PutUint16(b[2:], dport)
			b[12], b[13] = 5<<4, flags
			return b
		}
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b, sport)
		binary.BigEndian.PutUint16(b[2:], dport)
		binary.BigEndian.PutUint16(b[4:], 12)
		return b
	}
	v4 := func(src, dst netip.Addr, proto byte, frag uint16, payload []byte) []byte {
		b := make([]byte, 20)
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
		binary.BigEndian.PutUint16(b[6:], frag)
		b[8], b[9] = 64, proto
		s, d := src.As4(), dst.As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		return eth(0x0800, append(b, payload...))
	}
	v6 := func(src, dst netip.Addr, next byte, payload []byte) []byte {
		b := make([]byte, 40)
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
		b[6], b[7] = next, 64
		s, d := src.As16(), dst.As16()
		copy(b[8:], s[:])
		copy(b[24:], d[:])
		return eth(0x86dd, append(b, payload...))
	}
	c4, c6 := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8:c::5")
	bad4, bad6 := netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("2001:db8:bad::9")
	return [][]byte{
		v4(c4, fuzzVIP4, 6, 0, l4(6, 1234, 80, 0x02)),
		v4(c4, fuzzVIP4, 6, 0, l4(6, 1234, 80, 0x10)),
		v4(c4, fuzzVIP4, 17, 0, l4(17, 1234, 53, 0)),
		v4(c4, fuzzVIP4, 6, 0, l4(6, 1234, 8443, 0x02)),
		v4(c4, fuzzVIP4, 17, 0x2000, l4(17, 1234, 53, 0)),
		v4(bad4, fuzzVIP4, 6, 0, l4(6, 1234, 80, 0x02)),
		v6(c6, fuzzVIP6, 6, l4(6, 1234, 443, 0x02)),
		v6(c6, fuzzVIP6, 17, l4(17, 1234, 53, 0)),
		v6(c6, fuzzVIP6, 0, append([]byte{6, 0, 1, 4, 0, 0, 0, 0}, l4(6, 1, 443, 0x02)...)),
		v6(c6, fuzzVIP6, 44, append([]byte{17, 0, 0, 1, 0, 0, 0, 1}, l4(17, 1, 53, 0)...)),
		v6(bad6, fuzzVIP6, 17, l4(17, 1234, 53, 0)),
		eth(0x0806, make([]byte, 28)),
		eth(0x8100, make([]byte, 46)),
	}
}
