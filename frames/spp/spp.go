// Package spp is the Simple Proxy Protocol header codec: the 38-byte
// header a UDP proxy puts in front of every datagram it relays to a
// backend, and the backend in front of every reply, so that one shared
// socket carries every client's datagrams and the backend still sees each
// client's own address and port.
//
// The header is a 2-byte magic (0x56EC), the client's address and the
// proxy's address (16 bytes each, IPv4 as IPv4-mapped IPv6), then the
// client's port and the proxy's port, all in network byte order. A reply
// carries the header it answers, unchanged.
//
// It is a pure codec: no sockets, no allocation.
package spp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Len is the header's length in bytes.
const Len = 38

// Magic opens every header.
const Magic = 0x56EC

// Errors of Parse.
var (
	ErrShort    = errors.New("spp: datagram shorter than the header")
	ErrBadMagic = errors.New("spp: no SPP magic")
)

// Header is the two endpoints a proxied datagram travels between: the
// client, and the proxy address the client sent to.
type Header struct {
	Client netip.AddrPort
	Proxy  netip.AddrPort
}

// Append appends h's wire form to b. IPv4 addresses are written mapped.
func (h Header) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, Magic)
	c, p := h.Client.Addr().As16(), h.Proxy.Addr().As16()
	b = append(b, c[:]...)
	b = append(b, p[:]...)
	b = binary.BigEndian.AppendUint16(b, h.Client.Port())
	return binary.BigEndian.AppendUint16(b, h.Proxy.Port())
}

// Parse reads the header at the start of d and returns it with the
// payload that follows. IPv4-mapped addresses come back as IPv4, so they
// compare equal to the addresses sockets report.
func Parse(d []byte) (Header, []byte, error) {
	if len(d) < Len {
		return Header{}, nil, ErrShort
	}
	if binary.BigEndian.Uint16(d) != Magic {
		return Header{}, nil, ErrBadMagic
	}
	c := netip.AddrFrom16([16]byte(d[2:18])).Unmap()
	p := netip.AddrFrom16([16]byte(d[18:34])).Unmap()
	h := Header{
		Client: netip.AddrPortFrom(c, binary.BigEndian.Uint16(d[34:])),
		Proxy:  netip.AddrPortFrom(p, binary.BigEndian.Uint16(d[36:])),
	}
	return h, d[Len:], nil
}
