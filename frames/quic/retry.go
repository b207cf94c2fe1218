package quic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"sync"
)

// The Retry Integrity Tag is AES-128-GCM under a key and nonce fixed per
// version, over the Retry Pseudo-Packet: the Original Destination
// Connection ID (length-prefixed) followed by the Retry packet without its
// tag (RFC 9001 §5.8, RFC 9369 §3.3.3). It proves nothing secret; it lets
// a client tell a Retry from one corrupted or injected blind.
var (
	retryKeyV1   = [16]byte{0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e}
	retryNonceV1 = [12]byte{0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb}
	retryKeyV2   = [16]byte{0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2, 0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c, 0xcc, 0x92}
	retryNonceV2 = [12]byte{0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c, 0x6d, 0x99, 0x90, 0xef, 0xb0, 0x4a}
)

// retryAEADs are the two fixed-key AEADs, built once: a cipher.AEAD from
// crypto/cipher is stateless after construction and safe to share.
var retryAEADs = sync.OnceValue(func() [2]cipher.AEAD {
	var out [2]cipher.AEAD
	for i, k := range [2][16]byte{retryKeyV1, retryKeyV2} {
		b, err := aes.NewCipher(k[:])
		if err != nil {
			panic(err) // a 16-byte key cannot fail
		}
		if out[i], err = cipher.NewGCM(b); err != nil {
			panic(err)
		}
	}
	return out
})

// RetryIntegrityTag is the tag of retry, a Retry packet of version v
// without its last 16 bytes, sent in answer to an Initial whose DCID was
// odcid. Version 2 uses RFC 9369's key; any other version RFC 9001's.
// Unlike the parsers it allocates (the pseudo-packet): Retry is the slow
// path of a connection's first packet.
func RetryIntegrityTag(v uint32, odcid ConnID, retry []byte) [RetryIntegrityTagLen]byte {
	aead, nonce := retryAEADs()[0], retryNonceV1[:]
	if v == Version2 {
		aead, nonce = retryAEADs()[1], retryNonceV2[:]
	}
	pseudo := make([]byte, 0, 1+odcid.Len()+len(retry))
	pseudo = append(pseudo, odcid.n)
	pseudo = append(pseudo, odcid.b[:odcid.n]...)
	pseudo = append(pseudo, retry...)
	var tag [RetryIntegrityTagLen]byte
	aead.Seal(tag[:0], nonce, nil, pseudo)
	return tag
}

// AppendRetry appends a Retry packet of version v (1 or 2) to dst: to the
// client whose Initial had Source Connection ID dcid and Destination
// Connection ID odcid, from the new Connection ID scid, carrying token,
// with its integrity tag. The first byte's four unused bits are set (RFC
// 9000 §17.2.5 lets the server choose them), as in the RFC samples.
func AppendRetry(dst []byte, v uint32, dcid, scid, odcid ConnID, token []byte) ([]byte, error) {
	if v != Version1 && v != Version2 {
		return dst, ErrRetryVersion
	}
	if scid.Len() == 0 || scid == odcid {
		// RFC 9000 §17.2.5.1: the server MUST use a new SCID; a client
		// discards a Retry whose SCID equals the DCID it sent.
		return dst, ErrRetrySCID
	}
	if len(token) == 0 {
		return dst, ErrRetryToken // §17.2.5.2: a client discards an empty token
	}
	start := len(dst)
	dst = append(dst, 0xc0|typeBits(v, TypeRetry)<<4|0x0f)
	dst = binary.BigEndian.AppendUint32(dst, v)
	dst = append(dst, dcid.n)
	dst = append(dst, dcid.b[:dcid.n]...)
	dst = append(dst, scid.n)
	dst = append(dst, scid.b[:scid.n]...)
	dst = append(dst, token...)
	tag := RetryIntegrityTag(v, odcid, dst[start:])
	return append(dst, tag[:]...), nil
}

// ParseRetry parses b as a whole Retry packet sent in answer to an Initial
// whose DCID was odcid, and checks its integrity tag, as a client does
// before it uses a Retry (RFC 9000 §17.2.5.2).
func ParseRetry(b []byte, odcid ConnID) (Header, error) {
	h, _, err := ParseHeader(b, 0)
	if err != nil {
		return Header{}, err
	}
	if h.Type != TypeRetry {
		return Header{}, ErrNotRetry
	}
	want := RetryIntegrityTag(h.Version, odcid, b[:len(b)-RetryIntegrityTagLen])
	if subtle.ConstantTimeCompare(want[:], h.RetryTag[:]) != 1 {
		return Header{}, ErrRetryTagMismatch
	}
	return h, nil
}
