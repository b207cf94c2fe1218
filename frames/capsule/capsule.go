// Package capsule is the Capsule Protocol of RFC 9297 §3: the
// type-length-value sequence that carries HTTP Datagrams (DATAGRAM
// capsules) on a stream, where a hop has no QUIC datagrams (HTTP/2).
package capsule

import "github.com/expressgateway/expressgateway/frames/quic"

// TypeDatagram is the DATAGRAM capsule type (RFC 9297 §3.5).
const TypeDatagram uint64 = 0x00

// MaxDatagram is the largest DATAGRAM capsule payload a Splitter hands
// out; a longer one is skipped (counted by the caller): a datagram that
// large fits no QUIC DATAGRAM frame anyway.
const MaxDatagram = 64 << 10

// AppendDatagram appends a DATAGRAM capsule carrying payload.
func AppendDatagram(dst, payload []byte) []byte {
	dst = quic.AppendVarint(quic.AppendVarint(dst, TypeDatagram), uint64(len(payload)))
	return append(dst, payload...)
}

// Splitter cuts a Capsule Protocol byte stream, fed in arbitrary pieces,
// into DATAGRAM payloads and the bytes of every other capsule, which pass
// on unchanged (RFC 9297 §3.2: unknown capsule types are forwarded by an
// intermediary). It holds at most one capsule header and one DATAGRAM
// payload.
type Splitter struct {
	hdr    []byte // a capsule header being read
	typ    uint64
	remain uint64 // value bytes of the current capsule still to come
	inCap  bool   // inside a capsule's value
	skip   bool   // a DATAGRAM over MaxDatagram: its value is dropped
	dg     []byte // the DATAGRAM payload being gathered
}

// AtBoundary reports whether the stream so far ends between capsules: a
// capsule of the hop's own may be placed here.
func (s *Splitter) AtBoundary() bool { return !s.inCap && len(s.hdr) == 0 }

// Feed consumes b. pass receives the bytes of non-DATAGRAM capsules in
// order (slices of b, or of a held header: valid during the call);
// datagram receives each whole DATAGRAM payload (owned by the callee);
// tooLarge is called for each one skipped. Every byte sequence is a
// capsule sequence (a header is any two varints), so Feed cannot fail.
func (s *Splitter) Feed(b []byte, pass func([]byte), datagram func([]byte), tooLarge func()) {
	for len(b) > 0 {
		if !s.inCap {
			// Gather the header: a type varint and a length varint.
			need := headerLen(s.hdr, b)
			if need < 0 {
				s.hdr = append(s.hdr, b...)
				return
			}
			take := need - len(s.hdr)
			s.hdr = append(s.hdr, b[:take]...)
			b = b[take:]
			t, n, _ := quic.ParseVarint(s.hdr)
			l, _, _ := quic.ParseVarint(s.hdr[n:])
			s.typ, s.remain, s.inCap = t, l, true
			s.skip = t == TypeDatagram && l > MaxDatagram
			if t != TypeDatagram {
				pass(s.hdr)
			} else if s.skip {
				tooLarge()
			}
			s.hdr = s.hdr[:0]
			s.dg = s.dg[:0]
		}
		n := min(uint64(len(b)), s.remain)
		v := b[:n]
		b = b[n:]
		s.remain -= n
		switch {
		case s.typ != TypeDatagram:
			if len(v) > 0 {
				pass(v)
			}
		case !s.skip:
			s.dg = append(s.dg, v...)
		}
		if s.remain == 0 {
			s.inCap = false
			if s.typ == TypeDatagram && !s.skip {
				datagram(append([]byte(nil), s.dg...))
			}
		}
	}
}

// headerLen is the length of the capsule header that starts with held and
// goes on in b, or -1 when they end inside it.
func headerLen(held, b []byte) int {
	at := func(i int) byte {
		if i < len(held) {
			return held[i]
		}
		return b[i-len(held)]
	}
	have := len(held) + len(b)
	if have == 0 {
		return -1
	}
	n := 1 << (at(0) >> 6)
	if have <= n {
		return -1
	}
	m := 1 << (at(n) >> 6)
	if have < n+m {
		return -1
	}
	return n + m
}
