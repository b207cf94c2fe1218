// Package quiclb encodes and decodes QUIC-LB Connection IDs
// (draft-ietf-quic-load-balancers-21): a server ID, and a nonce that makes
// each Connection ID unique, behind a first octet whose top 3 bits name
// the config. A load balancer reads the server ID back from any
// Connection ID the server issued (its first one, its Retry one and every
// NEW_CONNECTION_ID), so it routes without per-connection state.
//
// The codec is pure (no sockets, no clocks). Generator is the
// quic.ConnectionIDGenerator a quic-go backend installs on its Transport.
//
// A passthrough with mint_retry = true answers new clients with its own
// Retry, whose token (SealRetryToken) is in quic-go's token format under
// the pool's shared TokenKey (its retry_secret_path). Every backend sets
// the same key on its Transport, or rejects those tokens:
//
//	k, err := quiclb.ReadTokenKey("/etc/expressgateway/retry.key"); tr := &quic.Transport{Conn: udp, TokenGeneratorKey: k.QUIC()}
package quiclb

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
)

// Limits of a config (draft §5.2: the server ID is at least 1 octet, the
// nonce at least 4, and both sum to at most 19 so the Connection ID fits
// QUIC version 1's 20 bytes).
const (
	MaxConfigs     = 7 // config IDs 0..6; 0b111 marks an unroutable CID
	MinServerIDLen = 1
	MaxServerIDLen = 15
	MinNonceLen    = 4
	MaxNonceLen    = 18
	MaxPlainLen    = 19 // server ID + nonce
	KeyLen         = 16 // AES-128
	// UnroutableConfig is the config rotation codepoint of a Connection
	// ID minted without a config (draft §3.1): always unroutable.
	UnroutableConfig = 7
)

// Encoding is how a config turns server ID and nonce into the bytes that
// follow the first octet.
type Encoding uint8

// The encodings of draft §5.
const (
	// Plaintext writes server ID and nonce as they are: anyone can read
	// the server ID and link a connection's Connection IDs.
	Plaintext Encoding = iota
	// SinglePass encrypts the 16 bytes of server ID and nonce as one
	// AES-128-ECB block (server ID + nonce = 16 exactly).
	SinglePass
	// FourPass is a 4-round Feistel network with AES-128-ECB as the round
	// function, for any other length.
	FourPass
)

var encodingNames = [...]string{Plaintext: "plaintext", SinglePass: "single_pass", FourPass: "four_pass"}

func (e Encoding) String() string {
	if int(e) < len(encodingNames) {
		return encodingNames[e]
	}
	return "invalid"
}

// ParseEncoding reads an encoding's config name.
func ParseEncoding(s string) (Encoding, error) {
	for i, n := range encodingNames {
		if s == n {
			return Encoding(i), nil
		}
	}
	return 0, fmt.Errorf("quiclb: unknown encoding %q (want plaintext, single_pass or four_pass)", s)
}

// Config is one QUIC-LB configuration, as the load balancer and the
// servers of a pool share it.
type Config struct {
	// ID is the config rotation codepoint, 0..6.
	ID uint8
	// ServerIDLen and NonceLen are the field lengths in bytes.
	ServerIDLen, NonceLen int
	Encoding              Encoding
	// Key is the 16-byte AES key of SinglePass and FourPass; nil for
	// Plaintext.
	Key []byte
}

// Check reports whether c is a valid config, naming the first rule it
// breaks.
func (c Config) Check() error {
	switch {
	case c.ID >= MaxConfigs:
		return fmt.Errorf("quiclb: config id %d: want 0..%d (7 marks unroutable Connection IDs)", c.ID, MaxConfigs-1)
	case c.ServerIDLen < MinServerIDLen || c.ServerIDLen > MaxServerIDLen:
		return fmt.Errorf("quiclb: server id length %d: want %d..%d", c.ServerIDLen, MinServerIDLen, MaxServerIDLen)
	case c.NonceLen < MinNonceLen || c.NonceLen > MaxNonceLen:
		return fmt.Errorf("quiclb: nonce length %d: want %d..%d", c.NonceLen, MinNonceLen, MaxNonceLen)
	case c.ServerIDLen+c.NonceLen > MaxPlainLen:
		return fmt.Errorf("quiclb: server id and nonce lengths sum to %d: at most %d", c.ServerIDLen+c.NonceLen, MaxPlainLen)
	}
	switch c.Encoding {
	case Plaintext:
		if c.Key != nil {
			return errors.New("quiclb: a plaintext config takes no key")
		}
		return nil
	case SinglePass:
		if c.ServerIDLen+c.NonceLen != aes.BlockSize {
			return fmt.Errorf("quiclb: single_pass needs server id + nonce = 16 bytes, not %d (use four_pass)", c.ServerIDLen+c.NonceLen)
		}
	case FourPass:
		if c.ServerIDLen+c.NonceLen == aes.BlockSize {
			return errors.New("quiclb: server id + nonce = 16 bytes must use single_pass (draft §5.4.1)")
		}
	default:
		return fmt.Errorf("quiclb: unknown encoding %d", c.Encoding)
	}
	if len(c.Key) != KeyLen {
		return fmt.Errorf("quiclb: %s needs a %d-byte key, got %d bytes", c.Encoding, KeyLen, len(c.Key))
	}
	return nil
}

// CIDLen is the length of the Connection IDs of the config: the first
// octet, the server ID and the nonce.
func (c Config) CIDLen() int { return 1 + c.ServerIDLen + c.NonceLen }

// ServerID is a server ID of up to MaxServerIDLen bytes, comparable (a map
// key) and allocation-free.
type ServerID struct {
	b [MaxServerIDLen]byte
	n uint8
}

// NewServerID copies b into a ServerID.
func NewServerID(b []byte) (ServerID, error) {
	var s ServerID
	if len(b) < MinServerIDLen || len(b) > MaxServerIDLen {
		return s, fmt.Errorf("quiclb: server id of %d bytes: want %d..%d", len(b), MinServerIDLen, MaxServerIDLen)
	}
	s.n = uint8(copy(s.b[:], b))
	return s, nil
}

// ParseServerID reads a server ID written in hex.
func ParseServerID(s string) (ServerID, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return ServerID{}, fmt.Errorf("quiclb: server id %q is not hex: %w", s, err)
	}
	return NewServerID(b)
}

// Len is the server ID's length in bytes.
func (s ServerID) Len() int { return int(s.n) }

// Bytes returns the server ID's bytes; the slice aliases s.
func (s *ServerID) Bytes() []byte { return s.b[:s.n] }

func (s ServerID) String() string { return hex.EncodeToString(s.b[:s.n]) }

// Codec encodes and decodes the Connection IDs of one config. It is safe
// for concurrent use.
type Codec struct {
	cfg   Config
	block cipher.Block // nil for Plaintext
}

// NewCodec checks c and prepares its cipher.
func NewCodec(c Config) (*Codec, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	k := &Codec{cfg: c}
	if c.Encoding != Plaintext {
		b, err := aes.NewCipher(c.Key)
		if err != nil {
			return nil, fmt.Errorf("quiclb: %w", err)
		}
		k.block = b
	}
	return k, nil
}

// Config returns the codec's config.
func (k *Codec) Config() Config { return k.cfg }

// Encode appends the Connection ID of server ID sid and nonce to dst. The
// first octet carries the config ID and, in its low 5 bits, the length of
// the rest (draft §3.2's length self-description).
func (k *Codec) Encode(dst []byte, sid ServerID, nonce []byte) ([]byte, error) {
	c := &k.cfg
	if sid.Len() != c.ServerIDLen || len(nonce) != c.NonceLen {
		return dst, fmt.Errorf("quiclb: config %d wants a %d-byte server id and %d-byte nonce, got %d and %d", c.ID, c.ServerIDLen, c.NonceLen, sid.Len(), len(nonce))
	}
	var pt [MaxPlainLen]byte
	n := copy(pt[:], sid.Bytes())
	n += copy(pt[n:], nonce)
	dst = append(dst, c.ID<<5|byte(n))
	switch c.Encoding {
	case SinglePass:
		var out [aes.BlockSize]byte
		k.block.Encrypt(out[:], pt[:aes.BlockSize])
		return append(dst, out[:]...), nil
	case FourPass:
		var out [MaxPlainLen]byte
		k.fourPassEncrypt(out[:n], pt[:n])
		return append(dst, out[:n]...), nil
	}
	return append(dst, pt[:n]...), nil
}

// ServerID reads the server ID out of cid, a Connection ID of this config
// (cid may run longer: servers may append bytes of their own). It fails
// only when cid is too short.
func (k *Codec) ServerID(cid []byte) (ServerID, error) {
	c := &k.cfg
	var s ServerID
	n := c.ServerIDLen + c.NonceLen
	if len(cid) < 1+n {
		return s, ErrTooShort
	}
	ct := cid[1 : 1+n]
	s.n = uint8(c.ServerIDLen)
	switch c.Encoding {
	case Plaintext:
		copy(s.b[:], ct[:c.ServerIDLen])
	case SinglePass:
		var pt [aes.BlockSize]byte
		k.block.Decrypt(pt[:], ct)
		copy(s.b[:], pt[:c.ServerIDLen])
	case FourPass:
		var pt [MaxPlainLen]byte
		k.fourPassDecrypt(pt[:n], ct, c.ServerIDLen)
		copy(s.b[:], pt[:c.ServerIDLen])
	}
	return s, nil
}

// ErrTooShort is a Connection ID shorter than its config's length.
var ErrTooShort = errors.New("quiclb: connection id shorter than its config")

// The four-pass Feistel network of draft §5.4.2. The plaintext of length
// L splits into halves of h = ceil(L/2) bytes; for odd L the middle byte's
// high nibble belongs to the left half and its low nibble to the right,
// the other nibble of each half kept zero.

// expand is the round function's input: the half, zero padding, then the
// plaintext length and the pass number in the last two octets.
func expand(l, pass int, half []byte) [aes.BlockSize]byte {
	var b [aes.BlockSize]byte
	copy(b[:], half)
	b[14], b[15] = byte(l), byte(pass)
	return b
}

// round XORs the first len(dst) bytes of AES(expand(l, pass, in)) into
// dst.
func (k *Codec) round(dst []byte, l, pass int, in []byte) {
	b := expand(l, pass, in)
	k.block.Encrypt(b[:], b[:])
	for i := range dst {
		dst[i] ^= b[i]
	}
}

// split copies src into left and right halves (each h bytes), clearing the
// shared nibbles when len(src) is odd.
func split(left, right, src []byte) {
	l, h := len(src), len(left)
	copy(left, src[:h])
	copy(right, src[l-h:])
	if l%2 == 1 {
		left[h-1] &= 0xf0
		right[0] &= 0x0f
	}
}

// join is split's inverse.
func join(dst, left, right []byte) {
	l, h := len(dst), len(left)
	copy(dst[l-h:], right)
	copy(dst, left) // an odd length's middle byte: left's high nibble…
	if l%2 == 1 {
		dst[h-1] = left[h-1] | right[0] // …and right's low one
	}
}

func clearTail(left []byte, odd bool) {
	if odd {
		left[len(left)-1] &= 0xf0
	}
}

func clearHead(right []byte, odd bool) {
	if odd {
		right[0] &= 0x0f
	}
}

func (k *Codec) fourPassEncrypt(dst, pt []byte) {
	l := len(pt)
	h, odd := (l+1)/2, l%2 == 1
	var lb, rb [(MaxPlainLen + 1) / 2]byte
	left, right := lb[:h], rb[:h]
	split(left, right, pt)
	k.round(right, l, 1, left)
	clearHead(right, odd)
	k.round(left, l, 2, right)
	clearTail(left, odd)
	k.round(right, l, 3, left)
	clearHead(right, odd)
	k.round(left, l, 4, right)
	clearTail(left, odd)
	join(dst, left, right)
}

// fourPassDecrypt recovers at least the first sidLen bytes of dst: three
// passes when the server ID lies within the left half, four otherwise.
func (k *Codec) fourPassDecrypt(dst, ct []byte, sidLen int) {
	l := len(ct)
	h, odd := (l+1)/2, l%2 == 1
	var lb, rb [(MaxPlainLen + 1) / 2]byte
	left, right := lb[:h], rb[:h]
	split(left, right, ct)
	k.round(left, l, 4, right)
	clearTail(left, odd)
	k.round(right, l, 3, left)
	clearHead(right, odd)
	k.round(left, l, 2, right)
	clearTail(left, odd)
	if sidLen > l/2 {
		k.round(right, l, 1, left)
		clearHead(right, odd)
	}
	join(dst, left, right)
}
