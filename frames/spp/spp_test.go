package spp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Client: netip.MustParseAddrPort("192.0.2.7:51000"), Proxy: netip.MustParseAddrPort("198.51.100.1:443")},
		{Client: netip.MustParseAddrPort("[2001:db8::7]:1"), Proxy: netip.MustParseAddrPort("[2001:db8::1]:65535")},
	} {
		b := h.Append([]byte("x")) // appends after what is there
		if len(b) != 1+Len || b[0] != 'x' {
			t.Fatalf("Append wrote %d bytes after the prefix, want %d", len(b)-1, Len)
		}
		got, rest, err := Parse(append(b[1:], "payload"...))
		if err != nil || got != h || string(rest) != "payload" {
			t.Fatalf("Parse = %v %q %v, want %v", got, rest, err, h)
		}
	}
}

// TestWireForm pins the layout: magic, client, proxy, client port, proxy
// port, IPv4 mapped.
func TestWireForm(t *testing.T) {
	h := Header{Client: netip.MustParseAddrPort("10.0.0.1:258"), Proxy: netip.MustParseAddrPort("10.0.0.2:772")}
	want := []byte{0x56, 0xEC,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2,
		1, 2, 3, 4}
	if got := h.Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("Append = % x\nwant     % x", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	h := Header{Client: netip.MustParseAddrPort("10.0.0.1:1"), Proxy: netip.MustParseAddrPort("10.0.0.2:2")}.Append(nil)
	if _, _, err := Parse(h[:Len-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
	h[0] = 0
	if _, _, err := Parse(h); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("bad magic: %v", err)
	}
}
