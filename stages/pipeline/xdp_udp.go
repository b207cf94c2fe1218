package pipeline

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/l4"
	"github.com/expressgateway/expressgateway/stages/route"
)

// The udp listeners: the userspace L4 path for datagrams, beside the tcp
// relay, and the fallback of an XDP udp service that names the listener.
// Flows pick backends from the listener's pool (swapped on reload) with
// the same route.Pool picking as the tcp relay.

// udpRelays maps a listener name to its running relay, for the
// udp_flows_active gauge (registered once per name, per process).
var udpRelays sync.Map // string → *l4.UDPRelay

// udpListener is a udp listener's socket and relay.
type udpListener struct {
	conn  *net.UDPConn
	relay *l4.UDPRelay
}

// listenUDP binds a udp listener's socket (Start, before serving).
func (g *Gateway) listenUDP(l *listener) error {
	addr, err := net.ResolveUDPAddr("udp", l.cfg.Address)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err
	}
	u := l.cfg.UDP
	relay, err := l4.NewUDPRelay(conn, l4.UDPOptions{
		Pool:        func() *route.Pool { return l.pool.Load() },
		IdleTimeout: ms(u.IdleTimeoutMs),
		MaxFlows:    u.MaxFlows,
		MaxDatagram: u.MaxDatagramBytes,
		Listener:    l.cfg.Name,
		OnFlowEnd:   func(e stages.FlowEnd) { l.streamLog.Load().flow(l.cfg.Name, "udp", e) },
	})
	if err != nil {
		conn.Close()
		return fmt.Errorf("udp relay: %w", err)
	}
	l.udp = &udpListener{conn: conn, relay: relay}
	return nil
}

// serveUDP runs the relay until accepting stops (drain): a datagram relay
// has no request to finish, so its flows end with the drain's start.
func (g *Gateway) serveUDP(l *listener) {
	relay, name := l.udp.relay, l.cfg.Name
	udpRelays.Store(name, relay)
	metrics.GetOrCreateGauge(`expressgateway_udp_flows_active{listener="`+name+`"}`, func() float64 {
		if r, ok := udpRelays.Load(name); ok {
			return float64(r.(*l4.UDPRelay).Flows())
		}
		return 0
	})
	g.run(l, func(ctx context.Context) {
		if err := relay.Serve(ctx); err != nil {
			g.log.Error().Err(err).Str("listener", l.cfg.Name).Msg("udp relay stopped")
		}
	})
}
