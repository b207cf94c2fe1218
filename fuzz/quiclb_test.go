package fuzz

import (
	"testing"

	"github.com/expressgateway/expressgateway/quiclb"
)

// FuzzQUICLBDecode checks the QUIC-LB decoder on any Connection ID under
// configs of every encoding: no panic, a routable verdict only with a
// server ID of the config's length, and a decoded server ID that encodes
// back (with the Connection ID's own plaintext nonce) to a Connection ID
// that decodes to the same server ID.
func FuzzQUICLBDecode(f *testing.F) {
	key := []byte{0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80, 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f}
	cfgs := []quiclb.Config{
		{ID: 0, ServerIDLen: 3, NonceLen: 4},
		{ID: 1, ServerIDLen: 10, NonceLen: 5, Encoding: quiclb.FourPass, Key: key},
		{ID: 2, ServerIDLen: 8, NonceLen: 8, Encoding: quiclb.SinglePass, Key: key},
		{ID: 3, ServerIDLen: 9, NonceLen: 9, Encoding: quiclb.FourPass, Key: key},
		{ID: 4, ServerIDLen: 3, NonceLen: 4, Encoding: quiclb.FourPass, Key: key},
	}
	d, err := quiclb.NewDecoder(cfgs)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"07c4605e4504cc4f", "2fcc381bc74cb4fbad2823a3d1f8fed2", "504dd2d05a7b0de9b2b9907afb5ecf8cc3", "e0", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, cid []byte) {
		id, sid, why := d.Decode(cid)
		if why != quiclb.Routable {
			return
		}
		c := cfgs[0]
		for _, x := range cfgs {
			if x.ID == id {
				c = x
			}
		}
		if sid.Len() != c.ServerIDLen || len(cid) < c.CIDLen() {
			t.Fatalf("cid %x: server id %s under config %d", cid, sid, id)
		}
		k, _ := quiclb.NewCodec(c)
		again, err := k.Encode(nil, sid, make([]byte, c.NonceLen))
		if err != nil {
			t.Fatal(err)
		}
		if _, s2, w2 := d.Decode(again); w2 != quiclb.Routable || s2 != sid {
			t.Fatalf("re-encoded %x decodes to %s %s, want %s", again, s2, w2, sid)
		}
	})
}
