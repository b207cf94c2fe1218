package fuzz

import (
	"bytes"
	"testing"

	"github.com/expressgateway/expressgateway/frames/capsule"
)

// splitCapsules feeds b to a Splitter in pieces of n bytes and returns the
// passed bytes and the datagrams.
func splitCapsules(b []byte, n int) (pass []byte, dgs [][]byte, boundary bool) {
	var s capsule.Splitter
	for len(b) > 0 {
		k := min(n, len(b))
		s.Feed(b[:k], func(p []byte) { pass = append(pass, p...) }, func(d []byte) { dgs = append(dgs, d) }, func() {})
		b = b[k:]
	}
	return pass, dgs, s.AtBoundary()
}

// FuzzCapsuleSplitter checks the Capsule Protocol splitter (RFC 9297 §3):
// no panic, the same result however the stream is cut, passed bytes never
// more than the input, and every datagram re-encoded splits back to
// itself.
func FuzzCapsuleSplitter(f *testing.F) {
	f.Add(capsule.AppendDatagram(nil, []byte("hello")), uint8(1))
	f.Add(append(capsule.AppendDatagram(nil, nil), 0x2a, 0x02, 'h', 'i'), uint8(3))
	f.Add([]byte{0x00, 0x40}, uint8(1))
	f.Add([]byte{0xc0, 0, 0, 0, 0, 0, 0, 0x2a, 0x41, 0x00}, uint8(5))
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		pass, dgs, boundary := splitCapsules(b, len(b)+1)
		pass2, dgs2, boundary2 := splitCapsules(b, int(cut)%8+1)
		if !bytes.Equal(pass, pass2) || len(dgs) != len(dgs2) || boundary != boundary2 {
			t.Fatalf("whole vs pieces: %d/%d passed, %d/%d datagrams, boundary %v/%v", len(pass), len(pass2), len(dgs), len(dgs2), boundary, boundary2)
		}
		if len(pass) > len(b) {
			t.Fatalf("passed %d of %d bytes", len(pass), len(b))
		}
		for i, d := range dgs {
			if !bytes.Equal(d, dgs2[i]) {
				t.Fatalf("datagram %d differs between cuts", i)
			}
			_, again, ok := splitCapsules(capsule.AppendDatagram(nil, d), 3)
			if !ok || len(again) != 1 || !bytes.Equal(again[0], d) {
				t.Fatalf("datagram %d does not re-split to itself", i)
			}
		}
	})
}
