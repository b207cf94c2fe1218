package quic

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cid(t testing.TB, s string) ConnID {
	t.Helper()
	c, err := NewConnID(mustHex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RFC 9001 Appendix A.2: the client Initial's unprotected header.
func TestParseHeader_RFC9001ClientInitial(t *testing.T) {
	b := mustHex(t, "c300000001088394c8f03e5157080000449e00000002")
	b = append(b, make([]byte, 1182-4)...) // Length 0x449e is the varint 1182
	h, n, err := ParseHeader(b, 8)
	if err != nil {
		t.Fatal(err)
	}
	if h.Type != TypeInitial || h.Version != Version1 || h.DCID != cid(t, "8394c8f03e515708") || h.SCID.Len() != 0 || len(h.Token) != 0 || h.Length != 1182 {
		t.Fatalf("got %+v", h)
	}
	if n != 18 {
		t.Fatalf("header length %d, want 18", n)
	}
	if n+int(h.Length) != len(b) {
		t.Fatalf("packet end %d, want %d", n+int(h.Length), len(b))
	}
}

// RFC 9001 Appendix A.4: a Retry packet.
func TestParseHeader_RFC9001Retry(t *testing.T) {
	b := mustHex(t, "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba")
	h, n, err := ParseHeader(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Type != TypeRetry || h.SCID != cid(t, "f067a5502a4262b5") || string(h.Token) != "token" || n != len(b) {
		t.Fatalf("got %+v n=%d", h, n)
	}
	if hex.EncodeToString(h.RetryTag[:]) != "04a265ba2eff4d829058fb3f0f2496ba" {
		t.Fatalf("tag %x", h.RetryTag)
	}
}

func roundTripHeaders(t testing.TB) []Header {
	d := cid(t, "0102030405060708")
	s := cid(t, "a1a2a3a4")
	long := cid(t, "000102030405060708090a0b0c0d0e0f10111213")
	var hs []Header
	for _, v := range []uint32{Version1, Version2} {
		hs = append(hs,
			Header{Type: TypeInitial, Version: v, DCID: d, SCID: s, Token: []byte("tok"), Length: 5},
			Header{Type: TypeInitial, Version: v, DCID: long, Length: 300},
			Header{Type: Type0RTT, Version: v, DCID: d, SCID: s, Length: 64},
			Header{Type: TypeHandshake, Version: v, DCID: d, Length: 1},
			Header{Type: TypeRetry, Version: v, DCID: d, SCID: s, Token: []byte("retry-token"), RetryTag: [16]byte{1, 2, 3}},
		)
	}
	hs = append(hs,
		Header{Type: TypeVersionNegotiation, DCID: d, SCID: s, Versions: []byte{0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf}},
		Header{Type: TypeUnknown, Version: 0xfaceb002, DCID: d, SCID: s},
		Header{Type: TypeShort, DCID: d},
	)
	return hs
}

func packet(h *Header) []byte {
	b := h.Append(nil)
	return append(b, make([]byte, h.Length)...)
}

func equalHeader(a, b *Header) bool {
	return a.Type == b.Type && a.Version == b.Version && a.DCID == b.DCID && a.SCID == b.SCID &&
		bytes.Equal(a.Token, b.Token) && a.Length == b.Length && bytes.Equal(a.Versions, b.Versions) &&
		a.RetryTag == b.RetryTag
}

func TestHeader_RoundTrip(t *testing.T) {
	for _, h := range roundTripHeaders(t) {
		t.Run(h.Type.String(), func(t *testing.T) {
			b := packet(&h)
			if got := len(h.Append(nil)); got != h.Len() {
				t.Fatalf("Len %d, Append wrote %d", h.Len(), got)
			}
			got, n, err := ParseHeader(b, h.DCID.Len())
			if err != nil {
				t.Fatal(err)
			}
			if !equalHeader(&got, &h) {
				t.Fatalf("got %+v\nwant %+v", got, h)
			}
			if n != h.Len() && h.Type != TypeUnknown {
				t.Fatalf("consumed %d, header is %d", n, h.Len())
			}
			dcid, err := ParseDCID(b, h.DCID.Len())
			if err != nil || dcid != h.DCID {
				t.Fatalf("ParseDCID = %v, %v", dcid, err)
			}
		})
	}
}

// Every strict prefix of a header that has a definite end is ErrShort, never
// a malformed verdict. (Retry and Version Negotiation packets run to the end
// of their datagram, so a cut one is malformed or shorter, not "short".)
func TestParseHeader_TruncatedPrefixIsShort(t *testing.T) {
	for _, h := range roundTripHeaders(t) {
		if h.Type == TypeRetry || h.Type == TypeVersionNegotiation {
			continue
		}
		b := packet(&h)
		end := len(b)
		if h.Type == TypeUnknown || h.Type == TypeShort {
			end = h.Len()
		}
		for i := 0; i < end; i++ {
			if _, _, err := ParseHeader(b[:i], h.DCID.Len()); !errors.Is(err, ErrShort) {
				t.Fatalf("%s: prefix %d/%d: err %v, want ErrShort", h.Type, i, end, err)
			}
		}
	}
}

func TestParseHeader_RejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		cid  int
		want error
	}{
		{"dcid over 20", append([]byte{0xc0, 0, 0, 0, 1, 21}, make([]byte, 40)...), 0, ErrConnIDTooLong},
		{"scid over 20", append([]byte{0xc0, 0, 0, 0, 1, 0, 255}, make([]byte, 300)...), 0, ErrConnIDTooLong},
		{"v1 fixed bit zero", []byte{0x80, 0, 0, 0, 1, 0, 0, 0, 0}, 0, ErrFixedBit},
		{"short fixed bit zero", []byte{0x00, 1, 2, 3, 4}, 4, ErrFixedBit},
		{"short cid len", []byte{0x40, 1}, 21, ErrShortHeaderCID},
		{"vn list", []byte{0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3}, 0, ErrVersionList},
		{"retry without tag", []byte{0xf0, 0, 0, 0, 1, 0, 0, 1, 2}, 0, ErrRetryTag},
		{"initial token too long", []byte{0xc0, 0, 0, 0, 1, 0, 0, 0x80, 0x01, 0, 0}, 0, ErrLength},
		{"handshake length too long", []byte{0xe0, 0, 0, 0, 1, 0, 0, 0x80, 0x01, 0, 0}, 0, ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseHeader(tt.b, tt.cid)
			if !errors.Is(err, tt.want) || !IsMalformed(err) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

// An unknown version is parsed by the RFC 8999 invariants alone, so that a
// passthrough can still route it (or answer Version Negotiation).
func TestParseHeader_UnknownVersionKeepsInvariants(t *testing.T) {
	b := []byte{0x80, 0x1a, 0x2a, 0x3a, 0x4a, 2, 0xaa, 0xbb, 1, 0xcc, 0xff, 0xff}
	h, n, err := ParseHeader(b, 0)
	if err != nil || h.Type != TypeUnknown || h.Version != 0x1a2a3a4a || h.DCID.String() != "aabb" || h.SCID.String() != "cc" || n != 10 {
		t.Fatalf("got %+v n=%d err=%v", h, n, err)
	}
}

func TestParseHeader_AllocatesNothing(t *testing.T) {
	hs := roundTripHeaders(t)
	pkts := make([][]byte, len(hs))
	for i := range hs {
		pkts[i] = packet(&hs[i])
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range pkts {
			ParseHeader(pkts[i], 8)
			ParseDCID(pkts[i], 8)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func TestVarint_RoundTripAndBoundaries(t *testing.T) {
	for _, v := range []uint64{0, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, MaxVarint} {
		b := AppendVarint(nil, v)
		if len(b) != VarintLen(v) {
			t.Fatalf("%d: len %d, VarintLen %d", v, len(b), VarintLen(v))
		}
		got, n, err := ParseVarint(b)
		if err != nil || got != v || n != len(b) {
			t.Fatalf("%d: got %d n=%d err=%v", v, got, n, err)
		}
		for i := range b {
			if _, _, err := ParseVarint(b[:i]); !errors.Is(err, ErrShort) {
				t.Fatalf("%d: prefix %d: %v", v, i, err)
			}
		}
	}
	// RFC 9000 §A.1 examples.
	for s, want := range map[string]uint64{"c2197c5eff14e88c": 151288809941952652, "9d7f3e7d": 494878333, "7bbd": 15293, "25": 37, "4025": 37} {
		got, _, err := ParseVarint(mustHex(t, s))
		if err != nil || got != want {
			t.Fatalf("%s: %d %v", s, got, err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	h := Header{Type: TypeInitial, Version: Version1, DCID: cid(b, "0102030405060708"), Length: 1200}
	pkt := packet(&h)
	short := packet(&Header{Type: TypeShort, DCID: h.DCID})
	b.ReportAllocs()
	for b.Loop() {
		ParseHeader(pkt, 8)
		ParseHeader(short, 8)
	}
}

func TestParseInvariant(t *testing.T) {
	long := []byte{0xc0, 0x0a, 0x0a, 0x0a, 0x0a, 3, 1, 2, 3, 2, 9, 9, 0xff}
	h, err := ParseInvariant(long, 0)
	if err != nil || !h.Long || h.Version != 0x0a0a0a0a || string(h.DCID) != "\x01\x02\x03" || string(h.SCID) != "\x09\x09" {
		t.Fatalf("long: %+v %v", h, err)
	}
	// An unknown version may carry Connection IDs past 20 bytes.
	big := append([]byte{0x80, 0, 0, 0, 7, 40}, make([]byte, 41)...)
	if h, err := ParseInvariant(big, 0); err != nil || len(h.DCID) != 40 || len(h.SCID) != 0 {
		t.Fatalf("40-byte DCID: %+v %v", h, err)
	}
	if _, err := ParseInvariant(big[:30], 0); err != ErrShort {
		t.Fatalf("truncated: %v", err)
	}
	// A short header with a zero (greased) fixed bit still parses.
	if h, err := ParseInvariant([]byte{0x01, 5, 6, 7, 8, 0}, 4); err != nil || h.Long || string(h.DCID) != "\x05\x06\x07\x08" {
		t.Fatalf("short: %+v %v", h, err)
	}
	if _, err := ParseInvariant([]byte{0x40, 1}, 4); err != ErrShort {
		t.Fatalf("short truncated: %v", err)
	}
	if _, err := ParseInvariant([]byte{0x40, 1}, 21); err != ErrShortHeaderCID {
		t.Fatalf("short cid len 21: %v", err)
	}
}
