package passthrough

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"time"

	"github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages/route"
)

// DefaultRetryTokenMaxAge bounds a Retry token's age when the listener
// checks it: a client answers a Retry within one round trip, and quic-go
// servers refuse one older than their handshake timeout (10 s by
// default) anyway.
const DefaultRetryTokenMaxAge = 10 * time.Second

// retrySCIDLen is the length of a random Retry Source Connection ID: the
// client's next DCID, by which the backend's Transport indexes the
// connection, so long enough never to collide.
const retrySCIDLen = 16

// RetryOptions make a listener validate client addresses itself
// (mint_retry): a tokenless Initial gets a Retry whose token the backends
// read under the same key.
type RetryOptions struct {
	// Key is the pool's shared token key (every backend's
	// TokenGeneratorKey).
	Key quiclb.TokenKey
	// MaxAge bounds a Retry token's age (0: DefaultRetryTokenMaxAge).
	MaxAge time.Duration
	// BackendDualStack: the backends see this listener's IPv4 address as
	// IPv4-mapped IPv6 (they listen on a dual-stack socket).
	BackendDualStack bool
	// NewTokens answers an Initial with a NEW_TOKEN token with a Retry
	// too: a backend binds those to this listener's address, not the
	// client's, so they validate nothing.
	NewTokens bool
}

// tokenReject is why an Initial's token was refused.
type tokenReject uint8

const (
	rejectUndecodable tokenReject = iota // not sealed under the key: answered with a Retry
	rejectAddress                        // a Retry token of another client IP
	rejectExpired                        // older than MaxAge (or from the future)
	rejectDCID                           // a flow-starting Initial whose DCID is not the Retry's SCID
	nRejects
)

var rejectNames = [nRejects]string{"undecodable", "client_address", "expired", "dcid"}

// parseInitial reads d's header if d starts with a version 1 or 2 Initial.
func parseInitial(d []byte) (quic.Header, bool) {
	h, _, err := quic.ParseHeader(d, 0)
	if err != nil || h.Type != quic.TypeInitial {
		return quic.Header{}, false
	}
	return h, true
}

// admitInitial applies mint_retry to a client Initial: a tokenless one (or
// one whose token does not open) is answered with a Retry; a Retry token
// must name the client's IP and be fresh, and, on a packet that would
// start a flow, the DCID must be the Retry's SCID (later Initials carry
// the server's). A NEW_TOKEN token is the backend's to judge, unless
// NewTokens. It reports whether the datagram goes on to a backend. Called
// without the mutex: it seals and opens tokens.
func (l *Listener) admitInitial(src netip.AddrPort, h *quic.Header, size int, hasFlow bool) bool {
	r := l.opts.Retry
	if len(h.Token) == 0 {
		l.sendRetry(src, h, size)
		return false
	}
	tok, err := quiclb.OpenToken(&r.Key, h.Token)
	if err != nil {
		// RFC 9000 §8.1.3: an invalid token is as if there were none; a
		// client holding a token of a rotated key gets a fresh Retry.
		l.m.tokenRejects[rejectUndecodable].Inc()
		l.sendRetry(src, h, size)
		return false
	}
	if !tok.Retry {
		if r.NewTokens {
			l.sendRetry(src, h, size)
			return false
		}
		return true
	}
	why := nRejects
	switch age := time.Since(tok.Issued); {
	case !tok.ClientIs(src.Addr()):
		why = rejectAddress
	case age > r.MaxAge || age < -r.MaxAge:
		why = rejectExpired
	case !hasFlow && !bytes.Equal(tok.RSCID, h.DCID.Bytes()):
		why = rejectDCID
	}
	if why != nRejects {
		l.m.tokenRejects[why].Inc()
		l.drop(reasonRetryToken, src)
		return false
	}
	return true
}

// sendRetry answers the Initial h from src with a Retry toward the
// backend a new flow of src would take, whose SCID routes there by
// QUIC-LB when that backend has a server ID (else it is random, with the
// unroutable config codepoint, and the 4-tuple hash routes the client's
// next Initial to the same backend).
func (l *Listener) sendRetry(src netip.AddrPort, h *quic.Header, size int) {
	if size < quic.MinInitialDatagram {
		// Anti-amplification: never answer a datagram under 1200 bytes.
		l.drop(reasonInitialTooSmall, src)
		return
	}
	if h.DCID.Len() < l.opts.MinClientDCIDLen {
		l.drop(reasonShortDCID, src)
		return
	}
	rt := l.routesNow()
	if rt == nil {
		l.drop(reasonNoBackend, src)
		return
	}
	b, err := rt.pool.Pick(route.Key{Src: src.Addr(), Hash: hash4(src, l.local)})
	if err != nil {
		l.drop(reasonNoBackend, src)
		return
	}
	// The token names the address the backend will see the client at:
	// the gateway's upstream address per flow, the client's own on SPP
	// (quiclb.SPPConn hands quic-go the header's unmapped address).
	sees := src.Addr()
	if l.shared == nil {
		var ok bool
		if sees, ok = rt.sees[b]; !ok {
			l.drop(reasonDial, src)
			return
		}
	}
	scid, err := rt.retrySCID(b)
	if err != nil {
		l.drop(reasonDial, src)
		l.opts.Log.Debug().Err(err).Str("listener", l.opts.Name).Msg("passthrough: retry connection id")
		return
	}
	token, err := quiclb.SealRetryToken(&l.opts.Retry.Key, quiclb.RetryToken{
		ServerSees: sees, Client: src.Addr(), Issued: time.Now(), ODCID: h.DCID.Bytes(), RSCID: scid.Bytes(),
	})
	if err != nil {
		l.drop(reasonDial, src)
		return
	}
	var buf [256]byte
	pkt, err := quic.AppendRetry(buf[:0], h.Version, h.SCID, scid, h.DCID, token)
	if err != nil {
		l.drop(reasonMalformed, src)
		return
	}
	if _, err := l.conn.WriteToUDPAddrPort(pkt, src); err != nil {
		l.m.sendErrors.Inc()
		return
	}
	l.m.retrySent.Inc()
}

// retrySCID mints the Source Connection ID of a Retry toward b.
func (rt *routes) retrySCID(b *route.Backend) (quic.ConnID, error) {
	if s, ok := rt.sidOf[b]; ok {
		nonce := make([]byte, s.codec.Config().NonceLen)
		if _, err := rand.Read(nonce); err != nil {
			return quic.ConnID{}, err
		}
		cid, err := s.codec.Encode(nil, s.sid, nonce)
		if err != nil {
			return quic.ConnID{}, err
		}
		return quic.NewConnID(cid)
	}
	var raw [retrySCIDLen]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return quic.ConnID{}, err
	}
	raw[0] |= quiclb.UnroutableConfig << 5
	return quic.NewConnID(raw[:])
}

// serverSees is the address b will see this host's datagrams come from:
// the source address the kernel picks toward it (a connected socket sends
// nothing), in the form b's socket reports it.
func serverSees(dst netip.AddrPort, dualStack bool) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if dualStack && a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	return a, nil
}
