package quic

import (
	"encoding/binary"
	"encoding/hex"
)

// The QUIC versions whose long headers this package parses past the
// invariants.
const (
	// Version1 is QUIC version 1 (RFC 9000).
	Version1 uint32 = 0x00000001
	// Version2 is QUIC version 2 (RFC 9369 §3.1).
	Version2 uint32 = 0x6b3343cf
	// versionNegotiation is the reserved version of a Version Negotiation
	// packet (RFC 8999 §6).
	versionNegotiation uint32 = 0
)

// PacketType names the kind of a packet, as far as its header says.
type PacketType uint8

// The packet types. TypeUnknown is a long header of a version we do not
// know: only the RFC 8999 invariants (version, Connection IDs) are read.
const (
	TypeUnknown PacketType = iota
	TypeInitial
	Type0RTT
	TypeHandshake
	TypeRetry
	TypeVersionNegotiation
	TypeShort // a 1-RTT packet (short header)
)

var typeNames = [...]string{
	TypeUnknown:            "unknown",
	TypeInitial:            "initial",
	Type0RTT:               "0rtt",
	TypeHandshake:          "handshake",
	TypeRetry:              "retry",
	TypeVersionNegotiation: "version_negotiation",
	TypeShort:              "short",
}

func (t PacketType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// ConnID is a Connection ID: at most MaxConnIDLen bytes kept in a fixed
// array, so it is a comparable value (a map key) that never allocates. The
// unused tail is always zero, so == compares Connection IDs.
type ConnID struct {
	b [MaxConnIDLen]byte
	n uint8
}

// NewConnID copies b into a ConnID; it fails when b is longer than
// MaxConnIDLen.
func NewConnID(b []byte) (ConnID, error) {
	var c ConnID
	if len(b) > MaxConnIDLen {
		return c, ErrConnIDTooLong
	}
	c.n = uint8(copy(c.b[:], b))
	return c, nil
}

// Len is the Connection ID's length in bytes.
func (c ConnID) Len() int { return int(c.n) }

// Bytes returns the Connection ID's bytes; the slice aliases c.
func (c *ConnID) Bytes() []byte { return c.b[:c.n] }

// String is the Connection ID in lowercase hex (for logs, never per packet).
func (c ConnID) String() string { return hex.EncodeToString(c.b[:c.n]) }

// Header is a parsed packet header. Token and Versions are borrowed from the
// parsed input and are valid only while it is.
type Header struct {
	Type PacketType
	// Version is the long header's version; 0 for a short header.
	Version uint32
	DCID    ConnID
	// SCID is the long header's Source Connection ID.
	SCID ConnID
	// Token is an Initial's token or a Retry's retry token.
	Token []byte
	// Length is the Length field of an Initial, 0-RTT or Handshake packet:
	// the bytes of packet number and payload that follow the header.
	Length uint64
	// Versions is a Version Negotiation packet's list of 4-byte versions.
	Versions []byte
	// RetryTag is a Retry packet's integrity tag (RFC 9001 §5.8).
	RetryTag [RetryIntegrityTagLen]byte
}

// IsLong reports whether the header is a long header.
func (h *Header) IsLong() bool { return h.Type != TypeShort }

// IsLongHeader reports whether a datagram starting with first carries a long
// header (RFC 8999 §5.1: the most significant bit is 1).
func IsLongHeader(first byte) bool { return first&0x80 != 0 }

// ParseHeader parses the packet header at the start of b. shortCIDLen is the
// length of the Destination Connection ID of short headers, which is not on
// the wire (RFC 8999 §5.2): the receiver chose it. It returns the header and
// the bytes it took: up to the packet number for Initial, 0-RTT, Handshake
// and short headers; the whole packet for Retry and Version Negotiation; the
// invariant fields for an unknown version. For Initial, 0-RTT and Handshake,
// b must also hold the Length bytes that follow, else ErrShort.
func ParseHeader(b []byte, shortCIDLen int) (Header, int, error) {
	if len(b) == 0 {
		return Header{}, 0, ErrShort
	}
	if !IsLongHeader(b[0]) {
		return parseShort(b, shortCIDLen)
	}
	return parseLong(b)
}

func parseShort(b []byte, cidLen int) (Header, int, error) {
	var h Header
	if cidLen < 0 || cidLen > MaxConnIDLen {
		return h, 0, ErrShortHeaderCID
	}
	// RFC 9000 §17.3.1: "Fixed Bit: The next bit (0x40) of byte 0 is set to
	// 1. Packets containing a zero value for this bit are not valid packets
	// in this version and MUST be discarded."
	if b[0]&0x40 == 0 {
		return h, 0, ErrFixedBit
	}
	n := 1 + cidLen
	if len(b) < n {
		return h, 0, ErrShort
	}
	h.Type = TypeShort
	h.DCID.n = uint8(copy(h.DCID.b[:], b[1:n]))
	return h, n, nil
}

// parseConnID reads a length-prefixed Connection ID at b[i:].
func parseConnID(b []byte, i int, c *ConnID) (int, error) {
	if len(b) <= i {
		return 0, ErrShort
	}
	l := int(b[i])
	if l > MaxConnIDLen {
		return 0, ErrConnIDTooLong
	}
	i++
	if len(b) < i+l {
		return 0, ErrShort
	}
	c.n = uint8(copy(c.b[:], b[i:i+l]))
	return i + l, nil
}

func parseLong(b []byte) (Header, int, error) {
	var h Header
	if len(b) < 5 {
		return h, 0, ErrShort
	}
	h.Version = binary.BigEndian.Uint32(b[1:5])
	i, err := parseConnID(b, 5, &h.DCID)
	if err != nil {
		return Header{}, 0, err
	}
	if i, err = parseConnID(b, i, &h.SCID); err != nil {
		return Header{}, 0, err
	}
	switch h.Version {
	case versionNegotiation:
		// RFC 8999 §6: the rest is a list of 4-byte supported versions.
		rest := b[i:]
		if len(rest)%4 != 0 {
			return Header{}, 0, ErrVersionList
		}
		h.Type = TypeVersionNegotiation
		h.Versions = rest
		return h, len(b), nil
	case Version1, Version2:
	default:
		h.Type = TypeUnknown
		return h, i, nil
	}
	// RFC 9000 §17.2: "Fixed Bit: ... Packets containing a zero value for
	// this bit are not valid packets in this version and MUST be discarded."
	if b[0]&0x40 == 0 {
		return Header{}, 0, ErrFixedBit
	}
	h.Type = longType(h.Version, b[0]>>4&3)
	switch h.Type {
	case TypeRetry:
		// RFC 9000 §17.2.5: Retry Token (..), Retry Integrity Tag (128).
		rest := b[i:]
		if len(rest) < RetryIntegrityTagLen {
			return Header{}, 0, ErrRetryTag
		}
		h.Token = rest[:len(rest)-RetryIntegrityTagLen]
		copy(h.RetryTag[:], rest[len(rest)-RetryIntegrityTagLen:])
		return h, len(b), nil
	case TypeInitial:
		l, n, err := ParseVarint(b[i:])
		if err != nil {
			return Header{}, 0, err
		}
		if l > MaxDatagram {
			return Header{}, 0, ErrLength
		}
		i += n
		if uint64(len(b)-i) < l {
			return Header{}, 0, ErrShort
		}
		h.Token = b[i : i+int(l)]
		i += int(l)
	}
	l, n, err := ParseVarint(b[i:])
	if err != nil {
		return Header{}, 0, err
	}
	if l > MaxDatagram {
		return Header{}, 0, ErrLength
	}
	i += n
	if uint64(len(b)-i) < l {
		return Header{}, 0, ErrShort
	}
	h.Length = l
	return h, i, nil
}

// longType maps the two type bits of a long header to its type: version 1
// per RFC 9000 §17.2 Table 5, version 2 per RFC 9369 §3.2.
func longType(v uint32, bits byte) PacketType {
	if v == Version2 {
		return [4]PacketType{TypeRetry, TypeInitial, Type0RTT, TypeHandshake}[bits]
	}
	return [4]PacketType{TypeInitial, Type0RTT, TypeHandshake, TypeRetry}[bits]
}

func typeBits(v uint32, t PacketType) byte {
	var bits byte
	switch t {
	case TypeInitial:
		bits = 0
	case Type0RTT:
		bits = 1
	case TypeHandshake:
		bits = 2
	case TypeRetry:
		bits = 3
	}
	if v == Version2 {
		bits = (bits + 1) & 3
	}
	return bits
}

// Len is the number of bytes Append writes for h.
func (h *Header) Len() int {
	if h.Type == TypeShort {
		return 1 + h.DCID.Len()
	}
	n := longHeaderMin + h.DCID.Len() + h.SCID.Len()
	switch h.Type {
	case TypeVersionNegotiation:
		n += len(h.Versions)
	case TypeRetry:
		n += len(h.Token) + RetryIntegrityTagLen
	case TypeInitial:
		n += VarintLen(uint64(len(h.Token))) + len(h.Token) + VarintLen(h.Length)
	case Type0RTT, TypeHandshake:
		n += VarintLen(h.Length)
	}
	return n
}

// Append appends h's header in wire form. The packet-number length and
// reserved bits of the first byte are written as zero; the caller appends
// the packet number and payload (Length bytes) after it.
func (h *Header) Append(dst []byte) []byte {
	if h.Type == TypeShort {
		dst = append(dst, 0x40)
		return append(dst, h.DCID.b[:h.DCID.n]...)
	}
	first := byte(0xc0)
	version := h.Version
	switch h.Type {
	case TypeVersionNegotiation:
		version = versionNegotiation
	case TypeUnknown:
	default:
		first |= typeBits(version, h.Type) << 4
	}
	dst = append(dst, first)
	dst = binary.BigEndian.AppendUint32(dst, version)
	dst = append(dst, h.DCID.n)
	dst = append(dst, h.DCID.b[:h.DCID.n]...)
	dst = append(dst, h.SCID.n)
	dst = append(dst, h.SCID.b[:h.SCID.n]...)
	switch h.Type {
	case TypeVersionNegotiation:
		dst = append(dst, h.Versions...)
	case TypeRetry:
		dst = append(dst, h.Token...)
		dst = append(dst, h.RetryTag[:]...)
	case TypeInitial:
		dst = AppendVarint(dst, uint64(len(h.Token)))
		dst = append(dst, h.Token...)
		dst = AppendVarint(dst, h.Length)
	case Type0RTT, TypeHandshake:
		dst = AppendVarint(dst, h.Length)
	}
	return dst
}

// ParseDCID returns only the Destination Connection ID of the packet at the
// start of b: the one field a passthrough routes by. It is ParseHeader's
// fast path and accepts any version.
func ParseDCID(b []byte, shortCIDLen int) (ConnID, error) {
	var c ConnID
	if len(b) == 0 {
		return c, ErrShort
	}
	if !IsLongHeader(b[0]) {
		h, _, err := parseShort(b, shortCIDLen)
		return h.DCID, err
	}
	if len(b) < 5 {
		return c, ErrShort
	}
	_, err := parseConnID(b, 5, &c)
	return c, err
}
