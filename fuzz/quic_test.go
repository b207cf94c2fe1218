package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/expressgateway/expressgateway/frames/quic"
)

func quicSeeds() [][]byte {
	d, _ := quic.NewConnID([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	s, _ := quic.NewConnID([]byte{9, 10, 11, 12})
	hs := []quic.Header{
		{Type: quic.TypeInitial, Version: quic.Version1, DCID: d, SCID: s, Token: []byte("token"), Length: 20},
		{Type: quic.Type0RTT, Version: quic.Version1, DCID: d, SCID: s, Length: 3},
		{Type: quic.TypeHandshake, Version: quic.Version2, DCID: d, Length: 2},
		{Type: quic.TypeRetry, Version: quic.Version1, SCID: s, Token: []byte("retry")},
		{Type: quic.TypeVersionNegotiation, DCID: d, SCID: s, Versions: []byte{0, 0, 0, 1}},
		{Type: quic.TypeUnknown, Version: 0x0a0a0a0a, DCID: d},
		{Type: quic.TypeShort, DCID: d},
	}
	var out [][]byte
	for i := range hs {
		b := hs[i].Append(nil)
		out = append(out, append(b, make([]byte, hs[i].Length)...))
	}
	return out
}

// FuzzQUICHeader checks the packet-header parser: no panic, ErrShort or a
// typed verdict, consumed ≤ input, Connection IDs ≤ 20 bytes, and a stable
// parse → append → parse with Len() == len(Append()).
func FuzzQUICHeader(f *testing.F) {
	for _, s := range quicSeeds() {
		f.Add(s, uint8(8))
	}
	f.Fuzz(func(t *testing.T, b []byte, cidLen uint8) {
		cl := int(cidLen % 24) // also past MaxConnIDLen
		h, n, err := quic.ParseHeader(b, cl)
		dcid, derr := quic.ParseDCID(b, cl)
		if err != nil {
			if !errors.Is(err, quic.ErrShort) && !quic.IsMalformed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if derr != nil || dcid != h.DCID {
			t.Fatalf("ParseDCID %v %v disagrees with ParseHeader %v", dcid, derr, h.DCID)
		}
		if n > len(b) || n < 1 {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if h.DCID.Len() > quic.MaxConnIDLen || h.SCID.Len() > quic.MaxConnIDLen {
			t.Fatal("connection id over 20 bytes")
		}
		if h.IsLong() && h.Type != quic.TypeVersionNegotiation && h.Type != quic.TypeRetry && h.Type != quic.TypeUnknown && n+int(h.Length) > len(b) {
			t.Fatalf("Length %d runs past the input", h.Length)
		}
		enc := h.Append(nil)
		if len(enc) != h.Len() {
			t.Fatalf("Len %d, Append wrote %d", h.Len(), len(enc))
		}
		enc = append(enc, make([]byte, h.Length)...)
		h2, _, err := quic.ParseHeader(enc, h.DCID.Len())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if h2.Type != h.Type || h2.Version != h.Version || h2.DCID != h.DCID || h2.SCID != h.SCID ||
			!bytes.Equal(h2.Token, h.Token) || h2.Length != h.Length || !bytes.Equal(h2.Versions, h.Versions) || h2.RetryTag != h.RetryTag {
			t.Fatalf("unstable: %+v → %+v", h, h2)
		}
	})
}

// FuzzQUICInvariant checks the RFC 8999 invariant parser: no panic,
// ErrShort or a typed verdict, Connection IDs inside the input, and
// agreement with ParseHeader on every packet ParseHeader accepts.
func FuzzQUICInvariant(f *testing.F) {
	for _, s := range quicSeeds() {
		f.Add(s, uint8(8))
	}
	f.Fuzz(func(t *testing.T, b []byte, cidLen uint8) {
		cl := int(cidLen % 24)
		inv, err := quic.ParseInvariant(b, cl)
		if err != nil {
			if !errors.Is(err, quic.ErrShort) && !quic.IsMalformed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(inv.DCID)+len(inv.SCID) > len(b) {
			t.Fatal("connection ids longer than the input")
		}
		h, _, herr := quic.ParseHeader(b, cl)
		if herr != nil {
			return
		}
		if inv.Long != h.IsLong() || !bytes.Equal(inv.DCID, h.DCID.Bytes()) || (inv.Long && !bytes.Equal(inv.SCID, h.SCID.Bytes())) {
			t.Fatalf("ParseInvariant %+v disagrees with ParseHeader %+v", inv, h)
		}
	})
}
