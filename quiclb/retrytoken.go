package quiclb

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
)

// This file seals and opens address-validation tokens in the format a
// quic-go server (v0.65) reads under its Transport's TokenGeneratorKey, so
// that a load balancer's Retry is one the server accepts: the server takes
// the Original Destination and Retry Source Connection IDs for its
// transport parameters from the token, which a token of any other format
// cannot give it (the client then aborts the handshake).
//
// The format: a 32-byte random salt, then AES-256-GCM with a random
// 12-byte nonce (nonce, ciphertext, tag) under the key HKDF-SHA256 derives
// from the TokenGeneratorKey (salt as salt, info "quic-go token source").
// The plaintext is the DER of a SEQUENCE { BOOLEAN is-retry, OCTET STRING
// address (0x00 then the IP's 4 or 16 bytes), INTEGER sent (Unix nanos),
// INTEGER rtt (µs), OCTET STRING odcid, OCTET STRING retry-scid }.
//
// The server checks a Retry token's address against the IP it receives the
// packet from and its age against its handshake timeout (10 s by default);
// it ignores the rtt field of a Retry token. Behind a passthrough the
// server sees the load balancer's address, not the client's, so the load
// balancer seals its own address there and binds the client's IP in the
// rtt field, which only it reads.

// TokenKeyLen is the length of a quic-go TokenGeneratorKey.
const TokenKeyLen = 32

// TokenKey is a pool's shared token key: the TokenGeneratorKey of every
// backend's quic.Transport, and the load balancer's retry_secret_path.
type TokenKey [TokenKeyLen]byte

const (
	tokenSaltLen  = 32
	tokenHKDFInfo = "quic-go token source"
	// addrPrefixIP is the address field's first byte for a UDP address.
	addrPrefixIP = 0
	// maxTokenLen bounds what OpenToken reads: no real token is larger,
	// and a datagram's token field could be.
	maxTokenLen = 512
)

// tokenBody is the sealed plaintext, field for field (encoding/asn1
// writes each in order: the order is the format).
type tokenBody struct {
	Retry  bool
	Addr   []byte
	SentNs int64
	RTTus  int64
	ODCID  []byte
	RSCID  []byte
}

// RetryToken is what a Retry token says.
type RetryToken struct {
	// ServerSees is the source address the server will see the client's
	// next Initial come from: its IP is compared byte for byte, so an IPv4
	// address is written in 4 bytes, and an IPv4-mapped IPv6 one (what a
	// server on a dual-stack socket sees) in 16.
	ServerSees netip.Addr
	// Client is the client's IP, bound into the token for the load
	// balancer's own check (Token.ClientIs); the server ignores it.
	Client netip.Addr
	// Issued is when the token was made.
	Issued time.Time
	// ODCID is the Destination Connection ID of the client's first
	// Initial; RSCID the Source Connection ID of the Retry.
	ODCID, RSCID []byte
}

// Token is an opened token: a Retry token, or one a server sent in a
// NEW_TOKEN frame (Retry false; only ServerSees and Issued are set).
type Token struct {
	Retry bool
	// ServerSees is the address field's IP (4 bytes stay IPv4, 16 stay
	// IPv6 or IPv4-mapped); invalid if the field holds no IP.
	ServerSees netip.Addr
	Issued     time.Time
	ODCID      []byte
	RSCID      []byte
	clientTag  int64
}

// ClientIs reports whether a Retry token was issued to a client at ip.
func (t *Token) ClientIs(ip netip.Addr) bool { return t.Retry && t.clientTag == clientTag(ip) }

// clientTag is the client binding kept in a Retry token's rtt field: 63
// bits of SHA-256 of the IP's 16-byte form. The AEAD keeps it secret and
// unforgeable; the hash only makes an IPv6 address fit in 8 bytes.
func clientTag(ip netip.Addr) int64 {
	a := ip.Unmap().As16()
	h := sha256.Sum256(append([]byte("expressgateway retry client\x00"), a[:]...))
	return int64(binary.BigEndian.Uint64(h[:8]) >> 1)
}

func (k *TokenKey) aead(salt []byte) (cipher.AEAD, error) {
	prk, err := hkdf.Extract(sha256.New, k[:], salt)
	if err != nil {
		return nil, err
	}
	ck, err := hkdf.Expand(sha256.New, prk, tokenHKDFInfo, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(b)
}

// SealRetryToken makes the Retry token of t under k.
func SealRetryToken(k *TokenKey, t RetryToken) ([]byte, error) {
	if !t.ServerSees.IsValid() || !t.Client.IsValid() {
		return nil, errors.New("quiclb: a retry token needs the server-seen and client addresses")
	}
	addr := append([]byte{addrPrefixIP}, t.ServerSees.AsSlice()...)
	body, err := asn1.Marshal(tokenBody{
		Retry:  true,
		Addr:   addr,
		SentNs: t.Issued.UnixNano(),
		RTTus:  clientTag(t.Client),
		ODCID:  t.ODCID,
		RSCID:  t.RSCID,
	})
	if err != nil {
		return nil, fmt.Errorf("quiclb: retry token: %w", err)
	}
	salt := make([]byte, tokenSaltLen, tokenSaltLen+12+len(body)+16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("quiclb: retry token salt: %w", err)
	}
	a, err := k.aead(salt)
	if err != nil {
		return nil, fmt.Errorf("quiclb: retry token: %w", err)
	}
	return a.Seal(salt, nil, body, nil), nil
}

// ErrBadToken is a token that does not open under the key: another key's,
// another format's, or corrupt.
var ErrBadToken = errors.New("quiclb: token does not open under the key")

// OpenToken opens a token sealed under k (by SealRetryToken, or by a
// quic-go server with k as its TokenGeneratorKey).
func OpenToken(k *TokenKey, b []byte) (Token, error) {
	if len(b) < tokenSaltLen+12+16 || len(b) > maxTokenLen {
		return Token{}, ErrBadToken
	}
	a, err := k.aead(b[:tokenSaltLen])
	if err != nil {
		return Token{}, fmt.Errorf("quiclb: open token: %w", err)
	}
	pt, err := a.Open(nil, nil, b[tokenSaltLen:], nil)
	if err != nil {
		return Token{}, ErrBadToken
	}
	var body tokenBody
	rest, err := asn1.Unmarshal(pt, &body)
	if err != nil || len(rest) != 0 || len(body.Addr) == 0 {
		// Sealed under the key yet not the format: a server of another
		// version, or a key shared with something else.
		return Token{}, ErrBadToken
	}
	t := Token{Retry: body.Retry, Issued: time.Unix(0, body.SentNs)}
	if body.Addr[0] == addrPrefixIP {
		t.ServerSees, _ = netip.AddrFromSlice(body.Addr[1:])
	}
	if t.Retry {
		t.ODCID, t.RSCID, t.clientTag = body.ODCID, body.RSCID, body.RTTus
	}
	return t, nil
}

// ParseTokenKey reads a token key file's contents: 32 raw bytes, or 64
// hex digits (surrounding whitespace allowed).
func ParseTokenKey(b []byte) (TokenKey, error) {
	var k TokenKey
	if len(b) == TokenKeyLen {
		copy(k[:], b)
		return k, nil
	}
	if h, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(h) == TokenKeyLen {
		copy(k[:], h)
		return k, nil
	}
	return k, fmt.Errorf("quiclb: want a %d-byte token key (raw, or %d hex digits), got %d bytes", TokenKeyLen, 2*TokenKeyLen, len(b))
}

// QUIC is k as a quic.Transport's TokenGeneratorKey.
func (k *TokenKey) QUIC() *quic.TokenGeneratorKey { return (*quic.TokenGeneratorKey)(k) }

// ReadTokenKey reads a token key file (see ParseTokenKey): the backend
// side of retry_secret_path.
func ReadTokenKey(path string) (TokenKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return TokenKey{}, fmt.Errorf("quiclb: token key: %w", err)
	}
	defer f.Close()
	// Bounded: a path at /dev/zero fails instead of filling memory.
	b, err := io.ReadAll(io.LimitReader(f, 4*TokenKeyLen))
	if err != nil {
		return TokenKey{}, fmt.Errorf("quiclb: token key: %w", err)
	}
	k, err := ParseTokenKey(b)
	if err != nil {
		return k, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
