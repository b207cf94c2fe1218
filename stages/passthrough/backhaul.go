package passthrough

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/frames/spp"
)

// Backhaul is how a listener's datagrams reach its backends.
type Backhaul uint8

const (
	// BackhaulPerFlow gives each client 4-tuple its own connected
	// upstream socket, with a writer and a reader goroutine: any QUIC
	// server works unmodified, and sees the load balancer's address.
	BackhaulPerFlow Backhaul = iota
	// BackhaulSPP sends every datagram over one shared socket behind a
	// Simple Proxy Protocol header naming the client, and takes the
	// replies the same way: a flow is a table entry, no socket and no
	// goroutine, and the backend (quiclb.SPPConn) sees each client's own
	// address.
	BackhaulSPP
)

// ParseBackhaul reads a backhaul's config name.
func ParseBackhaul(s string) (Backhaul, error) {
	switch s {
	case "", "per_flow":
		return BackhaulPerFlow, nil
	case "spp":
		return BackhaulSPP, nil
	}
	return 0, fmt.Errorf("passthrough: unknown backhaul %q (per_flow or spp)", s)
}

// sppSend puts d behind f's SPP header onto the shared socket. It runs
// on the read loop, outside the table lock.
func (l *Listener) sppSend(f *flow, d []byte) {
	bp := l.bufs.Get().(*[]byte)
	b := spp.Header{Client: f.client, Proxy: l.local}.Append((*bp)[:0])
	b = append(b, d...)
	if _, err := l.shared.WriteToUDPAddrPort(b, f.dst); err != nil {
		if !errors.Is(err, net.ErrClosed) {
			l.m.sendErrors.Inc()
		}
	} else {
		f.toBackend.Add(int64(len(d)))
	}
	*bp = b
	l.bufs.Put(bp)
}

// sppReplyLoop relays the backends' replies from the shared socket to
// their clients. A reply is taken only from a backend of the pool, only
// for a client with a flow on that backend: the listener never sends to
// an address no client sent from.
func (l *Listener) sppReplyLoop() {
	buf := make([]byte, maxDatagram+spp.Len+1)
	for {
		n, from, err := l.shared.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable: the next may pass
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		rt := l.routesNow()
		if rt == nil || rt.byUDP[from] == nil {
			l.drop(reasonNotBackend, from)
			continue
		}
		if n > maxDatagram+spp.Len {
			l.drop(reasonTooBig, from)
			continue
		}
		h, p, err := spp.Parse(buf[:n])
		if err != nil || len(p) == 0 {
			l.drop(reasonMalformed, from)
			continue
		}
		now := l.now.Load()
		l.mu.Lock()
		f := l.flows[h.Client]
		if f != nil && f.dst == from {
			f.last.Store(now)
		} else {
			f = nil
		}
		l.mu.Unlock()
		if f == nil {
			l.drop(reasonNoFlow, h.Client)
			continue
		}
		if quic.IsLongHeader(p[0]) {
			l.learnReply(f, p, now)
		}
		if _, err := l.conn.WriteToUDPAddrPort(p, f.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.m.sendErrors.Inc()
			continue
		}
		f.toClient.Add(int64(len(p)))
		l.m.toClient.Inc()
	}
}
