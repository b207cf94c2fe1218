package quiclb

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The vectors of draft-ietf-quic-load-balancers-21 Appendix B (servers
// self-encode the length), plus the worked example of §5.4.2. The last
// encrypted vector's table says config 3, but its Connection ID's first
// octet (0x12) says config 0; the bytes are the vector, so it is config 0.
var vectors = []struct {
	name  string
	cfg   uint8
	enc   Encoding
	key   string
	sid   string
	nonce string
	cid   string
}{
	{"plaintext", 0, Plaintext, "", "c4605e", "4504cc4f", "07c4605e4504cc4f"},
	{"four_pass_3_4", 0, FourPass, "8f95f09245765f80256934e50c66207f", "ed793a", "ee080dbf", "0720b1d07b359d3c"},
	{"four_pass_10_5_fourth_pass", 1, FourPass, "8f95f09245765f80256934e50c66207f", "ed793a51d49b8f5fab65", "ee080dbf48", "2fcc381bc74cb4fbad2823a3d1f8fed2"},
	{"single_pass_8_8", 2, SinglePass, "8f95f09245765f80256934e50c66207f", "ed793a51d49b8f5f", "ee080dbf48c0d1e5", "504dd2d05a7b0de9b2b9907afb5ecf8cc3"},
	{"four_pass_9_9", 0, FourPass, "8f95f09245765f80256934e50c66207f", "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", "125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc"},
	{"four_pass_example_odd", 0, FourPass, "fdf726a9893ec05c0632d3956680baf0", "31441a", "9c69c275", "0767947d29be054a"},
}

func TestCodec_DraftVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			sidB, nonce := unhex(t, v.sid), unhex(t, v.nonce)
			c := Config{ID: v.cfg, ServerIDLen: len(sidB), NonceLen: len(nonce), Encoding: v.enc}
			if v.key != "" {
				c.Key = unhex(t, v.key)
			}
			k, err := NewCodec(c)
			if err != nil {
				t.Fatal(err)
			}
			sid, err := NewServerID(sidB)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Encode(nil, sid, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.cid); !bytes.Equal(got, want) {
				t.Fatalf("Encode = %x, want %x", got, want)
			}
			d, err := NewDecoder([]Config{c})
			if err != nil {
				t.Fatal(err)
			}
			id, back, why := d.Decode(unhex(t, v.cid))
			if why != Routable || id != v.cfg || back != sid {
				t.Fatalf("Decode = %d %s %s, want %d %s", id, back, why, v.cfg, sid)
			}
		})
	}
}

func TestDecoder_Unroutable(t *testing.T) {
	key := unhex(t, "8f95f09245765f80256934e50c66207f")
	d, err := NewDecoder([]Config{{ID: 1, ServerIDLen: 2, NonceLen: 14, Encoding: SinglePass, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cid  []byte
		want Unroutable
	}{
		{nil, Empty},
		{append([]byte{0xe0}, make([]byte, 16)...), Reserved},
		{append([]byte{0x00}, make([]byte, 16)...), UnknownConfig},
		{append([]byte{0x20}, make([]byte, 15)...), TooShort},
		{append([]byte{0x2f}, make([]byte, 16)...), Routable},
	} {
		if _, _, why := d.Decode(tc.cid); why != tc.want {
			t.Errorf("Decode(%x) = %s, want %s", tc.cid, why, tc.want)
		}
	}
	if _, err := NewDecoder([]Config{{ID: 1, ServerIDLen: 1, NonceLen: 4}, {ID: 1, ServerIDLen: 2, NonceLen: 4}}); err == nil {
		t.Fatal("two configs with one ID accepted")
	}
}

func TestConfig_Check(t *testing.T) {
	key := make([]byte, KeyLen)
	for _, c := range []Config{
		{ID: 7, ServerIDLen: 2, NonceLen: 4},
		{ServerIDLen: 0, NonceLen: 4},
		{ServerIDLen: 16, NonceLen: 4},
		{ServerIDLen: 2, NonceLen: 3},
		{ServerIDLen: 10, NonceLen: 10},
		{ServerIDLen: 2, NonceLen: 4, Key: key},                       // plaintext with a key
		{ServerIDLen: 2, NonceLen: 4, Encoding: SinglePass, Key: key}, // not 16
		{ServerIDLen: 2, NonceLen: 14, Encoding: FourPass, Key: key},  // 16 must be single pass
		{ServerIDLen: 2, NonceLen: 4, Encoding: FourPass, Key: key[:8]},
		{ServerIDLen: 2, NonceLen: 4, Encoding: FourPass},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("Check(%+v) accepted", c)
		}
	}
}

// TestGenerator_RoundTrip: every Connection ID a generator mints (each
// encoding, odd and even lengths, server ID longer and shorter than the
// nonce) decodes to its server ID, has the generator's length and config
// bits, and none repeats.
func TestGenerator_RoundTrip(t *testing.T) {
	key := unhex(t, "fdf726a9893ec05c0632d3956680baf0")
	for _, c := range []Config{
		{ID: 0, ServerIDLen: 2, NonceLen: 6},
		{ID: 3, ServerIDLen: 2, NonceLen: 14, Encoding: SinglePass, Key: key},
		{ID: 5, ServerIDLen: 3, NonceLen: 4, Encoding: FourPass, Key: key},
		{ID: 6, ServerIDLen: 11, NonceLen: 6, Encoding: FourPass, Key: key},
		{ID: 2, ServerIDLen: 1, NonceLen: 18, Encoding: FourPass, Key: key},
	} {
		sid, _ := NewServerID(bytes.Repeat([]byte{0xa5}, c.ServerIDLen))
		g, err := NewGenerator(c, sid)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := NewDecoder([]Config{c})
		seen := map[string]bool{}
		for range 5000 {
			id, err := g.GenerateConnectionID()
			if err != nil {
				t.Fatal(err)
			}
			b := id.Bytes()
			if len(b) != g.ConnectionIDLen() || b[0]>>5 != c.ID || int(b[0]&0x1f) != c.ServerIDLen+c.NonceLen {
				t.Fatalf("%+v: cid %x: wrong length or first octet", c, b)
			}
			if cfg, got, why := d.Decode(b); why != Routable || cfg != c.ID || got != sid {
				t.Fatalf("%+v: cid %x decodes to %s %s", c, b, got, why)
			}
			if seen[string(b)] {
				t.Fatalf("%+v: cid %x repeated", c, b)
			}
			seen[string(b)] = true
		}
	}
}

// TestGenerator_Exhaustion: a 4-byte nonce runs out after 2^32 Connection
// IDs; the generator then errs rather than repeat one.
func TestGenerator_Exhaustion(t *testing.T) {
	sid, _ := NewServerID([]byte{1})
	g, err := NewGenerator(Config{ServerIDLen: 1, NonceLen: 4}, sid)
	if err != nil {
		t.Fatal(err)
	}
	g.left = 2 // as if 2^32 - 2 had been minted
	for range 2 {
		if _, err := g.GenerateConnectionID(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.GenerateConnectionID(); err != ErrNoncesExhausted {
		t.Fatalf("err = %v, want ErrNoncesExhausted", err)
	}
}
