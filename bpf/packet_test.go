package bpf

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Test packet builders. They compute checksums independently of the
// program, so the byte-for-byte checks also check the program's sums.

var (
	macClient = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	macLB     = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	macGW     = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe}
)

const (
	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
	ethARP  = 0x0806

	protoTCP  = 6
	protoUDP  = 17
	protoIPIP = 4
	protoIPv6 = 41

	tcpSYN = 0x02
	tcpACK = 0x10
)

func ethFrame(dst, src net.HardwareAddr, etype uint16, payload []byte) []byte {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, dst...)
	b = append(b, src...)
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func csumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// ipv4Opts tweaks an IPv4 header.
type ipv4Opts struct {
	tos      byte
	fragOff  uint16 // flags+offset field
	ttl      byte
	id       uint16
	options  []byte // multiple of 4
	totalAdj int    // added to the total length field (to forge it)
}

func ipv4Packet(src, dst netip.Addr, proto byte, payload []byte, o ipv4Opts) []byte {
	hl := 20 + len(o.options)
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	b[1] = o.tos
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)+o.totalAdj))
	binary.BigEndian.PutUint16(b[4:], o.id)
	binary.BigEndian.PutUint16(b[6:], o.fragOff)
	b[8] = o.ttl
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], o.options)
	binary.BigEndian.PutUint16(b[10:], csumFold(csumAdd(0, b[:hl])))
	return append(b, payload...)
}

func ipv6Packet(src, dst netip.Addr, next byte, payload []byte, tclass byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(tclass)<<20)
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = next
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

// pseudo sums the L4 pseudo-header (RFC 793 §3.1, RFC 8200 §8.1).
func pseudo(src, dst netip.Addr, proto byte, n int) uint32 {
	sum := csumAdd(0, src.AsSlice())
	sum = csumAdd(sum, dst.AsSlice())
	return sum + uint32(proto) + uint32(n)
}

func tcpSegment(src, dst netip.Addr, sport, dport uint16, flags byte, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[16:], csumFold(csumAdd(pseudo(src, dst, protoTCP, len(b)), b)))
	return b
}

func udpDatagram(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[6:], csumFold(csumAdd(pseudo(src, dst, protoUDP, len(b)), b)))
	return b
}

// l4 builds a TCP or UDP payload for the given flow.
func l4(proto byte, src, dst netip.Addr, sport, dport uint16, flags byte, payload []byte) []byte {
	if proto == protoTCP {
		return tcpSegment(src, dst, sport, dport, flags, payload)
	}
	return udpDatagram(src, dst, sport, dport, payload)
}

// clientFrame is a client packet to the balancer's MAC.
func clientFrame(proto byte, src, dst netip.Addr, sport, dport uint16, flags byte, payload []byte) []byte {
	seg := l4(proto, src, dst, sport, dport, flags, payload)
	if src.Is4() {
		return ethFrame(macLB, macClient, ethIPv4, ipv4Packet(src, dst, proto, seg, ipv4Opts{tos: 0x10}))
	}
	return ethFrame(macLB, macClient, ethIPv6, ipv6Packet(src, dst, proto, seg, 0x28))
}

// encapsulated is what the balancer must send for frame: the outer header
// to backend from source, the inner IP packet untouched.
func encapsulated(frame []byte, source, backend netip.Addr, nextHop net.HardwareAddr) []byte {
	inner := frame[14:]
	innerProto := byte(protoIPIP)
	var tos byte
	if binary.BigEndian.Uint16(frame[12:]) == ethIPv6 {
		innerProto = protoIPv6
		tos = byte(binary.BigEndian.Uint32(inner) >> 20)
	} else {
		tos = inner[1]
	}
	if backend.Is4() {
		return ethFrame(nextHop, macLB, ethIPv4, ipv4Packet(source, backend, innerProto, inner, ipv4Opts{tos: tos, fragOff: 0x4000}))
	}
	return ethFrame(nextHop, macLB, ethIPv6, ipv6Packet(source, backend, innerProto, inner, tos))
}
