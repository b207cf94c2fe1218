package pipeline

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/accept"
)

// ticketKeys are a TLS listener's session-ticket keys: one per rotation
// interval, derived from a secret and the interval's number, so every
// instance holding the same secret computes the same key at the same time
// and resumes the others' sessions with no coordination.
type ticketKeys struct {
	secret            []byte
	interval, overlap time.Duration
}

// newTicketKeys reads (or creates) the listener's ticket_key_path; without
// one the secret is random, so tickets resume on this process only.
func newTicketKeys(t *conf.ListenerTLS) (*ticketKeys, error) {
	k := &ticketKeys{
		interval: time.Duration(max(t.TicketRotationIntervalSeconds, 1)) * time.Second,
		overlap:  time.Duration(max(t.TicketRotationOverlapSeconds, 0)) * time.Second,
	}
	if t.TicketKeyPath == "" {
		k.secret = make([]byte, 32)
		rand.Read(k.secret)
		return k, nil
	}
	var err error
	if k.secret, err = accept.ReadSecret("ticket key", t.TicketKeyPath); err != nil {
		return nil, err
	}
	return k, nil
}

// quicTicketLabel separates a quic listener's ticket secret from the
// Retry secret it is derived from (which also keys Retry tokens).
const quicTicketLabel = "expressgateway quic session tickets"

// newQUICTicketKeys are a quic listener's session-ticket keys, derived
// from its Retry secret: instances that share retry_secret_path (as they
// must for each other's Retry and NEW_TOKEN tokens) resume each other's
// sessions and accept each other's 0-RTT, and the keys rotate daily with
// a day's overlap, as a TLS listener's do by default.
func newQUICTicketKeys(retrySecret []byte) (*ticketKeys, error) {
	secret, err := hkdf.Key(sha256.New, retrySecret, nil, quicTicketLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("quic ticket secret: %w", err)
	}
	d := time.Duration(conf.DefaultTicketRotationS) * time.Second
	return &ticketKeys{secret: secret, interval: d, overlap: d}, nil
}

// keysAt is at without the next change: the accept stage asks per
// handshake.
func (k *ticketKeys) keysAt(now time.Time) [][32]byte {
	keys, _ := k.at(now)
	return keys
}

// epochKey is the key of rotation interval e.
func (k *ticketKeys) epochKey(e int64) [32]byte {
	var info [8 + len(ticketKeyLabel)]byte
	copy(info[:], ticketKeyLabel)
	binary.BigEndian.PutUint64(info[len(ticketKeyLabel):], uint64(e))
	b, err := hkdf.Key(sha256.New, k.secret, nil, string(info[:]), 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf of 32 bytes cannot fail: %v", err)) // only on an over-long output
	}
	return [32]byte(b)
}

const ticketKeyLabel = "expressgateway tls ticket key "

// at returns the keys valid at now, newest first (crypto/tls seals new
// tickets with the first): the current interval's, then each earlier
// interval's whose end is less than the overlap ago. next is when the set
// changes.
func (k *ticketKeys) at(now time.Time) (keys [][32]byte, next time.Time) {
	iv := int64(k.interval)
	t := now.UnixNano()
	e := t / iv
	keys = append(keys, k.epochKey(e))
	next = time.Unix(0, (e+1)*iv)
	for j := e - 1; len(keys) < conf.MaxTicketKeys; j-- {
		expires := (j+1)*iv + int64(k.overlap)
		if t >= expires {
			break
		}
		keys = append(keys, k.epochKey(j))
		if x := time.Unix(0, expires); x.Before(next) {
			next = x
		}
	}
	return keys, next
}

// apply sets the keys valid now on c.
func (k *ticketKeys) apply(c *tls.Config) {
	keys, _ := k.at(time.Now())
	c.SetSessionTicketKeys(keys)
}

// rotate re-keys the listener's current TLS config at each change of the
// key set until ctx ends.
func (k *ticketKeys) rotate(ctx context.Context, current func() *tls.Config) {
	for {
		_, next := k.at(time.Now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if c := current(); c != nil {
			k.apply(c)
		}
	}
}
