package passthrough

import (
	"net"
	"net/netip"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/frames/spp"
	"github.com/expressgateway/expressgateway/quiclb"
)

// withSPP puts a backend behind the SPP backhaul: its Transport reads
// through quiclb.SPPConn, taking datagrams from loopback only.
func withSPP(tr *quic.Transport) {
	tr.Conn = quiclb.NewSPPConn(tr.Conn.(*net.UDPConn), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

// Over the shared-socket backhaul, QUIC-LB and fallback connections
// reach their backends and stay there, the backend sees each client's own
// address and port (not the gateway's), and a flow costs no goroutine.
func TestSPP_RoutesAndShowsClientAddress(t *testing.T) {
	ca := newCA()
	cfg := quiclb.Config{ID: 0, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: testKey}
	var q QUICLB
	bs := make([]*backend, 0, 4)
	q = QUICLB{Config: cfg, ServerIDs: map[string]quiclb.ServerID{}}
	for i := range 3 {
		sid, _ := quiclb.NewServerID([]byte{0, byte(i + 1)})
		gen, err := quiclb.NewGenerator(cfg, sid)
		if err != nil {
			t.Fatal(err)
		}
		b := startBackend(t, ca, "spp-lb-"+string(rune('a'+i)), gen, withSPP)
		q.ServerIDs[b.addr] = sid
		bs = append(bs, b)
	}
	bs = append(bs, startBackend(t, ca, "spp-plain", nil, withSPP)) // random CIDs: fallback and learned
	o := defaultOpts(t.Name(), testPool(t, bs...))
	o.QUICLB = []QUICLB{q}
	o.Backhaul = BackhaulSPP
	g := startGateway(t, "127.0.0.1:0", o)
	seen := map[string]int{}
	var cs []*client
	for range 16 {
		c := dial(t, ca, g.l.Addr())
		cs = append(cs, c)
		first := ask(t, c.conn)
		if again := ask(t, c.conn); again != first {
			t.Fatalf("a connection moved from %s to %s", first, again)
		}
		if c.peerName() != first {
			t.Fatalf("client verified %q's certificate but %q answered", c.peerName(), first)
		}
		seen[first]++
		var owner *backend
		for _, b := range bs {
			if b.name == first {
				owner = b
			}
		}
		if _, ok := owner.remotes.Load(c.conn.LocalAddr().String()); !ok {
			t.Fatalf("backend %s did not see the client's address %s", first, c.conn.LocalAddr())
		}
	}
	if len(seen) < 2 {
		t.Fatalf("16 connections all went to %v", seen)
	}
	if g.l.Flows() < len(cs) {
		t.Fatalf("%d flows for %d clients", g.l.Flows(), len(cs))
	}
	g.l.mu.Lock()
	for _, f := range g.l.flows {
		if f.conn != nil || f.backlog != nil {
			t.Errorf("flow %s holds a socket or a backlog on the SPP backhaul", f.client)
		}
	}
	g.l.mu.Unlock()
	// A client that moves to a new port keeps its backend by its QUIC-LB
	// Connection ID (a probe on a new path uses a Connection ID never seen
	// before: a server without QUIC-LB cannot be followed).
	moved := 0
	for _, c := range cs {
		name := ask(t, c.conn)
		if name == "spp-plain" || moved == 4 {
			continue
		}
		moved++
		c.migrate(t)
		if got := ask(t, c.conn); got != name {
			t.Fatalf("a migrated connection moved from %s to %s", name, got)
		}
	}
	if counter(t.Name(), `passthrough_datagrams_total{route="cid"}`) == 0 {
		t.Fatal("no migrated datagram was routed by Connection ID")
	}
	t.Logf("spread: %v", seen)
}

// A datagram on the shared socket that is not from a backend of the
// pool, or names a client with no flow, is dropped and counted, never
// relayed: the listener does not reflect.
func TestSPP_RefusesStrangersAndUnknownClients(t *testing.T) {
	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	o := defaultOpts(t.Name(), testPool(t, &backend{addr: raw.LocalAddr().String()}))
	o.Backhaul = BackhaulSPP
	g := startGateway(t, "127.0.0.1:0", o)
	shared := g.l.shared.LocalAddr().(*net.UDPAddr).AddrPort()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), shared.Port()))
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	hdr := spp.Header{Client: victim.LocalAddr().(*net.UDPAddr).AddrPort(), Proxy: g.l.local}.Append(nil)
	pkt := append(hdr, longHeader(make([]byte, 8))...)
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.WriteToUDP(pkt, to)
	waitFor(t, "the stranger's datagram dropped", func() bool {
		return counter(t.Name(), `passthrough_dropped_total{reason="not_a_backend"}`) >= 1
	})
	// From the backend's own socket address, but for a client that never
	// sent: no flow.
	raw.WriteToUDP(pkt, to)
	waitFor(t, "the unknown client's datagram dropped", func() bool {
		return counter(t.Name(), `passthrough_dropped_total{reason="no_flow"}`) >= 1
	})
	if n := g.l.m.toClient.Get(); n != 0 {
		t.Fatalf("%d datagrams relayed to clients", n)
	}
}
