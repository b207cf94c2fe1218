package fuzz

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/expressgateway/expressgateway/frames/spp"
)

// FuzzSPP checks the Simple Proxy Protocol header parser: no panic, a
// payload that is the input's tail, and parse → append → parse stable.
func FuzzSPP(f *testing.F) {
	f.Add(spp.Header{Client: netip.MustParseAddrPort("192.0.2.1:443"), Proxy: netip.MustParseAddrPort("[2001:db8::1]:4433")}.Append([]byte("x")[:0]))
	f.Add([]byte{0x56, 0xEC})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := spp.Parse(b)
		if err != nil {
			return
		}
		if len(p) != len(b)-spp.Len || !bytes.Equal(p, b[spp.Len:]) {
			t.Fatalf("payload %d bytes of %d", len(p), len(b))
		}
		h2, _, err := spp.Parse(h.Append(nil))
		if err != nil || h2 != h {
			t.Fatalf("round trip: %v %v != %v", err, h2, h)
		}
	})
}
