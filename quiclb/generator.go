package quiclb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/quic-go/quic-go"
)

// Generator mints the QUIC-LB Connection IDs of one server under one
// config: it is a quic.ConnectionIDGenerator, so a quic-go server that
// sets it on its Transport issues routable Connection IDs for its first
// Source Connection ID, its Retry and every NEW_CONNECTION_ID.
//
// Nonces never repeat under a key (draft §5.3): the nonce's last (up to 8)
// bytes are a counter that starts at a random value and stops, with an
// error, after one full turn; the bytes before it are random, fixed per
// Generator.
type Generator struct {
	codec *Codec
	sid   ServerID

	mu      sync.Mutex
	prefix  [MaxNonceLen]byte // the random, fixed part of the nonce
	counter uint64
	left    uint64 // nonces left before the counter wraps; 0 with full = 64-bit
	full    bool   // the counter is 64 bits: it cannot run out in practice
}

var _ quic.ConnectionIDGenerator = (*Generator)(nil)

// NewGenerator makes the generator of server sid under c.
func NewGenerator(c Config, sid ServerID) (*Generator, error) {
	k, err := NewCodec(c)
	if err != nil {
		return nil, err
	}
	if sid.Len() != c.ServerIDLen {
		return nil, fmt.Errorf("quiclb: server id %s is %d bytes, config %d wants %d", sid, sid.Len(), c.ID, c.ServerIDLen)
	}
	g := &Generator{codec: k, sid: sid}
	var seed [8]byte
	if _, err := rand.Read(g.prefix[:]); err != nil {
		return nil, fmt.Errorf("quiclb: nonce seed: %w", err)
	}
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("quiclb: nonce seed: %w", err)
	}
	g.counter = binary.BigEndian.Uint64(seed[:])
	if cb := min(c.NonceLen, 8); cb == 8 {
		g.full = true
	} else {
		g.left = 1 << (8 * cb)
	}
	return g, nil
}

// ErrNoncesExhausted means every nonce of the config has been used: the
// server must move to another config.
var ErrNoncesExhausted = errors.New("quiclb: nonces of this config exhausted")

// GenerateConnectionID implements quic.ConnectionIDGenerator.
func (g *Generator) GenerateConnectionID() (quic.ConnectionID, error) {
	c := &g.codec.cfg
	var nonce [MaxNonceLen]byte
	g.mu.Lock()
	if !g.full {
		if g.left == 0 {
			g.mu.Unlock()
			return quic.ConnectionID{}, ErrNoncesExhausted
		}
		g.left--
	}
	ctr := g.counter
	g.counter++
	g.mu.Unlock()
	n := c.NonceLen
	cb := min(n, 8)
	copy(nonce[:n-cb], g.prefix[:n-cb])
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], ctr)
	copy(nonce[n-cb:n], be[8-cb:])
	var buf [1 + MaxPlainLen]byte
	cid, err := g.codec.Encode(buf[:0], g.sid, nonce[:n])
	if err != nil {
		return quic.ConnectionID{}, err
	}
	return quic.ConnectionIDFromBytes(cid), nil
}

// ConnectionIDLen implements quic.ConnectionIDGenerator.
func (g *Generator) ConnectionIDLen() int { return g.codec.cfg.CIDLen() }
