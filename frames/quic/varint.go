package quic

import "io"

// ParseVarint reads a variable-length integer (RFC 9000 §16) from the start
// of b and returns it with the number of bytes it took. It returns ErrShort
// when b ends inside the integer.
func ParseVarint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, ErrShort
	}
	n := 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0, ErrShort
	}
	v := uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n, nil
}

// VarintLen is the number of bytes AppendVarint writes for v (values above
// MaxVarint are not encodable and report 8, the caller's bug to avoid).
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	}
	return 8
}

// AppendVarint appends v in the shortest encoding (RFC 9000 §16). v must not
// exceed MaxVarint; larger values are truncated to 62 bits.
func AppendVarint(dst []byte, v uint64) []byte {
	switch VarintLen(v) {
	case 1:
		return append(dst, byte(v))
	case 2:
		return append(dst, byte(v>>8)|0x40, byte(v))
	case 4:
		return append(dst, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
	return append(dst, byte(v>>56)&0x3f|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ReadVarint reads a variable-length integer from r: io.EOF only before
// its first byte, io.ErrUnexpectedEOF inside it.
func ReadVarint(r io.ByteReader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < n; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v = v<<8 | uint64(b)
	}
	return v, nil
}
