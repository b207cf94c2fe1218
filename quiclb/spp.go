package quiclb

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/frames/spp"
)

// SPPConn is the backend side of a passthrough listener's shared-socket
// backhaul (backhaul = "spp"): a net.PacketConn for a quic-go Transport
// that takes the load balancer's datagrams, each behind a Simple Proxy
// Protocol header, and hands quic-go the client's own address, so Retry,
// address validation and the anti-amplification limit see the real
// client. A reply goes back, behind the same header, to the load balancer
// that last delivered for that client.
//
// Only datagrams from the load balancers' prefixes are read; any other
// source is dropped, so nobody else can claim a client address.
//
//	udp, _ := net.ListenUDP("udp", addr)
//	tr := &quic.Transport{Conn: quiclb.NewSPPConn(udp, lbPrefixes), ConnectionIDGenerator: gen}
type SPPConn struct {
	conn *net.UDPConn
	lbs  []netip.Prefix

	rmu  sync.Mutex // one reader at a time owns rbuf
	rbuf []byte
	wbuf sync.Pool // *[]byte

	mu      sync.Mutex
	clients map[netip.AddrPort]sppRoute
	swept   time.Time
}

type sppRoute struct {
	lb   netip.AddrPort // the load balancer that delivered last
	hdr  spp.Header
	seen time.Time
}

// sppMaxDatagram bounds one relayed datagram, header included.
const sppMaxDatagram = 2048 + spp.Len

// SPPRouteTTL is how long a client's route back through its load balancer
// is kept after its last datagram; SPPMaxClients bounds the routes.
const (
	SPPRouteTTL   = 5 * time.Minute
	SPPMaxClients = 1 << 20
)

// NewSPPConn wraps conn; lbs are the load balancers' source prefixes.
func NewSPPConn(conn *net.UDPConn, lbs []netip.Prefix) *SPPConn {
	c := &SPPConn{conn: conn, lbs: lbs, rbuf: make([]byte, sppMaxDatagram+1), clients: map[netip.AddrPort]sppRoute{}}
	c.wbuf.New = func() any { b := make([]byte, 0, sppMaxDatagram); return &b }
	return c
}

// ReadFrom returns the next client datagram and the client's address.
func (c *SPPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(c.rbuf)
		if err != nil {
			return 0, nil, err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if n > sppMaxDatagram || !c.fromLB(from.Addr()) {
			continue
		}
		h, payload, err := spp.Parse(c.rbuf[:n])
		if err != nil || !h.Client.IsValid() {
			continue
		}
		c.remember(h, from)
		return copy(p, payload), net.UDPAddrFromAddrPort(h.Client), nil
	}
}

// WriteTo sends p to the client addr through its load balancer.
func (c *SPPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("quiclb: spp write to %T", addr)
	}
	ap := ua.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	c.mu.Lock()
	r, ok := c.clients[ap]
	c.mu.Unlock()
	if !ok {
		// As lost on the path: quic-go closes a connection whose write
		// fails, and a client with no route (expired) is one that went
		// quiet; its connection times out as over a dead path.
		return len(p), nil
	}
	bp := c.wbuf.Get().(*[]byte)
	b := append(r.hdr.Append((*bp)[:0]), p...)
	_, err := c.conn.WriteToUDPAddrPort(b, r.lb)
	*bp = b
	c.wbuf.Put(bp)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *SPPConn) fromLB(a netip.Addr) bool {
	for _, p := range c.lbs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remember records the load balancer that delivered h, dropping expired
// routes once per TTL and refusing new clients past the bound.
func (c *SPPConn) remember(h spp.Header, lb netip.AddrPort) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > SPPRouteTTL {
		for k, r := range c.clients {
			if now.Sub(r.seen) > SPPRouteTTL {
				delete(c.clients, k)
			}
		}
		c.swept = now
	}
	if _, ok := c.clients[h.Client]; !ok && len(c.clients) >= SPPMaxClients {
		return
	}
	c.clients[h.Client] = sppRoute{lb: lb, hdr: h, seen: now}
}

// Close closes the socket.
func (c *SPPConn) Close() error { return c.conn.Close() }

// LocalAddr is the socket's address.
func (c *SPPConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// SetDeadline, SetReadDeadline and SetWriteDeadline set the socket's.
func (c *SPPConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *SPPConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *SPPConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// SetReadBuffer and SetWriteBuffer size the socket's buffers (quic-go
// raises them when it can).
func (c *SPPConn) SetReadBuffer(n int) error  { return c.conn.SetReadBuffer(n) }
func (c *SPPConn) SetWriteBuffer(n int) error { return c.conn.SetWriteBuffer(n) }

var _ net.PacketConn = (*SPPConn)(nil)
