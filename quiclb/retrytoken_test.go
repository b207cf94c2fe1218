package quiclb

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testTokenKey = TokenKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

func TestRetryToken_RoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 123)
	for _, sees := range []netip.Addr{netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("::ffff:10.0.0.9"), netip.MustParseAddr("2001:db8::1")} {
		rt := RetryToken{ServerSees: sees, Client: netip.MustParseAddr("192.0.2.7"), Issued: now, ODCID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, RSCID: bytes.Repeat([]byte{0xee}, 20)}
		b, err := SealRetryToken(&testTokenKey, rt)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := OpenToken(&testTokenKey, b)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.Retry || !tok.Issued.Equal(now) || !bytes.Equal(tok.ODCID, rt.ODCID) || !bytes.Equal(tok.RSCID, rt.RSCID) || tok.ServerSees != sees {
			t.Fatalf("opened %+v from %+v", tok, rt)
		}
		if !tok.ClientIs(netip.MustParseAddr("192.0.2.7")) || !tok.ClientIs(netip.MustParseAddr("::ffff:192.0.2.7")) || tok.ClientIs(netip.MustParseAddr("192.0.2.8")) {
			t.Fatal("the client binding does not tell the client's IP from another")
		}
	}
	b1, _ := SealRetryToken(&testTokenKey, RetryToken{ServerSees: netip.MustParseAddr("10.0.0.9"), Client: netip.MustParseAddr("10.0.0.1"), Issued: now, ODCID: []byte{1}, RSCID: []byte{2}})
	b2, _ := SealRetryToken(&testTokenKey, RetryToken{ServerSees: netip.MustParseAddr("10.0.0.9"), Client: netip.MustParseAddr("10.0.0.1"), Issued: now, ODCID: []byte{1}, RSCID: []byte{2}})
	if bytes.Equal(b1, b2) {
		t.Fatal("two tokens of the same fields are equal: no salt")
	}
}

// The server's checks depend on the address field's exact bytes (0x00
// then 4 bytes for IPv4): pinned here, with the DER layout, against the
// plaintext the key opens.
func TestRetryToken_Layout(t *testing.T) {
	b, err := SealRetryToken(&testTokenKey, RetryToken{ServerSees: netip.MustParseAddr("127.0.0.1"), Client: netip.MustParseAddr("127.0.0.1"), Issued: time.Unix(0, 5), ODCID: []byte{9}, RSCID: []byte{8}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := testTokenKey.aead(b[:tokenSaltLen])
	pt, err := a.Open(nil, nil, b[tokenSaltLen:], nil)
	if err != nil {
		t.Fatal(err)
	}
	// SEQUENCE { BOOLEAN TRUE, OCTET STRING 00 7f000001, INTEGER 5, INTEGER tag, OCTET STRING 09, OCTET STRING 08 }
	if !bytes.HasPrefix(pt, []byte{0x30, byte(len(pt) - 2), 0x01, 0x01, 0xff, 0x04, 0x05, 0, 127, 0, 0, 1, 0x02, 0x01, 0x05, 0x02}) || !bytes.HasSuffix(pt, []byte{0x04, 0x01, 0x09, 0x04, 0x01, 0x08}) {
		t.Fatalf("plaintext %x", pt)
	}
}

func TestRetryToken_RefusesOtherKeysAndTampering(t *testing.T) {
	b, _ := SealRetryToken(&testTokenKey, RetryToken{ServerSees: netip.MustParseAddr("10.0.0.9"), Client: netip.MustParseAddr("10.0.0.1"), Issued: time.Now(), ODCID: []byte{1}, RSCID: []byte{2}})
	other := testTokenKey
	other[31] ^= 1
	if _, err := OpenToken(&other, b); !errors.Is(err, ErrBadToken) {
		t.Fatalf("another key: %v", err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x80
		if _, err := OpenToken(&testTokenKey, c); !errors.Is(err, ErrBadToken) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, n := range []int{0, 1, tokenSaltLen + 27, maxTokenLen + 1} {
		if _, err := OpenToken(&testTokenKey, make([]byte, n)); !errors.Is(err, ErrBadToken) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if _, err := SealRetryToken(&testTokenKey, RetryToken{Client: netip.MustParseAddr("10.0.0.1")}); err == nil {
		t.Fatal("sealed a token without the server-seen address")
	}
}

// A server's NEW_TOKEN token (is-retry false) opens as one: no
// connection IDs, no client binding.
func TestRetryToken_NewTokenIsNotRetry(t *testing.T) {
	body, _ := asn1.Marshal(tokenBody{Addr: []byte{0, 10, 0, 0, 9}, SentNs: 42, RTTus: 1500})
	salt := make([]byte, tokenSaltLen)
	a, _ := testTokenKey.aead(salt)
	tok, err := OpenToken(&testTokenKey, a.Seal(salt, nil, body, nil))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Retry || tok.ODCID != nil || tok.Issued.UnixNano() != 42 || tok.ClientIs(netip.MustParseAddr("10.0.0.9")) {
		t.Fatalf("opened %+v", tok)
	}
	// Sealed under the key but not the format: refused.
	if _, err := OpenToken(&testTokenKey, a.Seal(bytes.Clone(salt), nil, []byte("not asn.1"), nil)); !errors.Is(err, ErrBadToken) {
		t.Fatalf("junk plaintext: %v", err)
	}
}

func TestTokenKey_Files(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	os.WriteFile(raw, testTokenKey[:], 0o600)
	hexed := filepath.Join(dir, "hex")
	os.WriteFile(hexed, []byte("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n"), 0o600)
	for _, p := range []string{raw, hexed} {
		k, err := ReadTokenKey(p)
		if err != nil || k != testTokenKey {
			t.Fatalf("%s: %x %v", p, k, err)
		}
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abcd"), 0o600)
	if _, err := ReadTokenKey(short); err == nil || !strings.Contains(err.Error(), "want a 32-byte token key") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ReadTokenKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("read a missing key")
	}
	if *testTokenKey.QUIC() != [32]byte(testTokenKey) {
		t.Fatal("QUIC() is not the same key")
	}
}

func BenchmarkRetryTokenSealOpen(b *testing.B) {
	rt := RetryToken{ServerSees: netip.MustParseAddr("10.0.0.9"), Client: netip.MustParseAddr("192.0.2.7"), Issued: time.Now(), ODCID: make([]byte, 8), RSCID: make([]byte, 16)}
	b.ReportAllocs()
	for b.Loop() {
		tok, err := SealRetryToken(&testTokenKey, rt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenToken(&testTokenKey, tok); err != nil {
			b.Fatal(err)
		}
	}
}
