package quic

import "encoding/binary"

// Invariant is what RFC 8999 promises of every QUIC packet, in any version:
// the header form, and for long headers the version and both Connection
// IDs (each up to 255 bytes). A router that reads only this keeps working
// for versions it does not know. DCID and SCID are borrowed from the input.
type Invariant struct {
	Long    bool
	Version uint32 // long headers only; 0 is Version Negotiation
	DCID    []byte
	SCID    []byte // long headers only
}

// ParseInvariant reads the invariant fields at the start of b. As in
// ParseHeader, shortCIDLen is the short header's DCID length, which is not
// on the wire. Unlike ParseHeader it checks no version-specific bit (the
// fixed bit may be greased, RFC 9287) and takes long-header Connection IDs
// of up to 255 bytes (RFC 8999 §5.1).
func ParseInvariant(b []byte, shortCIDLen int) (Invariant, error) {
	var h Invariant
	if len(b) == 0 {
		return h, ErrShort
	}
	if !IsLongHeader(b[0]) {
		if shortCIDLen < 0 || shortCIDLen > MaxConnIDLen {
			return h, ErrShortHeaderCID
		}
		if len(b) < 1+shortCIDLen {
			return h, ErrShort
		}
		h.DCID = b[1 : 1+shortCIDLen]
		return h, nil
	}
	if len(b) < longHeaderMin {
		return h, ErrShort
	}
	h.Long = true
	h.Version = binary.BigEndian.Uint32(b[1:5])
	i := 5
	for _, c := range []*[]byte{&h.DCID, &h.SCID} {
		if len(b) <= i {
			return Invariant{}, ErrShort
		}
		l := int(b[i])
		i++
		if len(b) < i+l {
			return Invariant{}, ErrShort
		}
		*c = b[i : i+l]
		i += l
	}
	return h, nil
}
