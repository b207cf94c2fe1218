package passthrough

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages/route"
)

// sink is a raw UDP socket standing in for a backend: it reports which
// datagrams the gateway sent it.
type sink struct {
	conn *net.UDPConn
	addr string
}

func newSinks(t testing.TB, n int) []*sink {
	t.Helper()
	var out []*sink
	for range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, &sink{conn: c, addr: c.LocalAddr().String()})
	}
	return out
}

func sinkPool(t testing.TB, ss []*sink) *route.Pool {
	t.Helper()
	var bs []*backend
	for _, s := range ss {
		bs = append(bs, &backend{addr: s.addr})
	}
	return testPool(t, bs...)
}

// recvAny returns the index of the sink that received a datagram.
func recvAny(t *testing.T, ss []*sink) int {
	t.Helper()
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i, s := range ss {
			s.conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			if _, err := s.conn.Read(buf); err == nil {
				return i
			}
		}
	}
	t.Fatal("no backend received the datagram")
	return -1
}

func udpClient(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// longHeader is a version-1 long header with dcid, padded to 1200 bytes.
func longHeader(dcid []byte) []byte {
	b := append([]byte{0xc0, 0, 0, 0, 1, byte(len(dcid))}, dcid...)
	b = append(b, 0)
	return append(b, make([]byte, 1200-len(b))...)
}

func shortHeader(dcid []byte) []byte {
	return append(append([]byte{0x40}, dcid...), make([]byte, 40)...)
}

func localOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// A Connection ID that decodes under a config but names no configured
// server (and one of an unknown config, and one too short) takes the
// fallback: the backend the 4-tuple hash picks.
func TestGuard_UnknownServerIDFallsBackToTheHash(t *testing.T) {
	ss := newSinks(t, 3)
	pool := sinkPool(t, ss)
	cfg := quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 6}
	codec, _ := quiclb.NewCodec(cfg)
	o := defaultOpts(t.Name(), pool)
	o.QUICLB = []QUICLB{{Config: cfg, ServerIDs: map[string]quiclb.ServerID{ss[0].addr: mustSID(t, 0, 1)}}}
	g := startGateway(t, "127.0.0.1:0", o)
	unknown, _ := codec.Encode(nil, mustSID(t, 0x7f, 0x7f), make([]byte, 6))
	// Short headers carry no length: "too short" is a long header's.
	for _, pkt := range [][]byte{shortHeader(unknown), shortHeader(append([]byte{0xa0}, make([]byte, 8)...)), longHeader([]byte{0x20, 0, 1, 2, 3, 4, 5, 6})} {
		for i := range 4 {
			c := udpClient(t)
			if pkt[0]&0x80 != 0 {
				pkt[13] = byte(i) // a fresh client DCID: a learned one keeps its first pick
			}
			c.WriteToUDP(pkt, g.l.Addr().(*net.UDPAddr))
			want, _ := pool.Pick(route.Key{Hash: hash4(localOf(c), localOf(g.l.conn))})
			if got := recvAny(t, ss); ss[got].addr != want.Address {
				t.Fatalf("packet %x went to %s, the hash picks %s", pkt[:10], ss[got].addr, want.Address)
			}
		}
	}
	known, _ := codec.Encode(nil, mustSID(t, 0, 1), make([]byte, 6))
	for range 4 {
		udpClient(t).WriteToUDP(shortHeader(known), g.l.Addr().(*net.UDPAddr))
		if got := recvAny(t, ss); got != 0 {
			t.Fatalf("a known server id went to backend %d", got)
		}
	}
}

func mustSID(t *testing.T, b ...byte) quiclb.ServerID {
	t.Helper()
	s, err := quiclb.NewServerID(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A backend marked down gets no new connection, whatever their Connection
// IDs; an established QUIC-LB connection (short header) still reaches it.
func TestGuard_DownBackendGetsNoNewConnections(t *testing.T) {
	ss := newSinks(t, 3)
	pool := sinkPool(t, ss)
	cfg := quiclb.Config{ID: 0, ServerIDLen: 1, NonceLen: 7}
	codec, _ := quiclb.NewCodec(cfg)
	o := defaultOpts(t.Name(), pool)
	o.QUICLB = []QUICLB{{Config: cfg, ServerIDs: map[string]quiclb.ServerID{ss[0].addr: mustSID(t, 1)}}}
	g := startGateway(t, "127.0.0.1:0", o)
	pool.SetDown(pool.Backends()[0], true)
	toDown, _ := codec.Encode(nil, mustSID(t, 1), make([]byte, 7))
	for i := range 30 {
		dcid := toDown
		if i%2 == 1 {
			dcid = []byte{0xe0, byte(i), 2, 3, 4, 5, 6, 7, 8}
		}
		udpClient(t).WriteToUDP(longHeader(dcid), g.l.Addr().(*net.UDPAddr))
		if got := recvAny(t, ss); got == 0 {
			t.Fatalf("new connection %d reached the down backend", i)
		}
	}
	udpClient(t).WriteToUDP(shortHeader(toDown), g.l.Addr().(*net.UDPAddr))
	if got := recvAny(t, ss); got != 0 {
		t.Fatalf("an established connection left its draining backend for %d", got)
	}
}

// min_client_dcid_len, the version-0 rule and malformed headers drop; a
// DCID over max_dcid_len_routed is routed by 4-tuple and never learned.
func TestGuard_DCIDRules(t *testing.T) {
	ss := newSinks(t, 2)
	o := defaultOpts(t.Name(), sinkPool(t, ss))
	o.MaxDCIDLenRouted = 12
	g := startGateway(t, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	c := udpClient(t)
	c.WriteToUDP(longHeader([]byte{1, 2, 3, 4, 5}), to)
	vn := []byte{0x80, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0}
	c.WriteToUDP(vn, to)
	c.WriteToUDP([]byte{0xc0, 0, 0, 0, 1, 30}, to)
	waitFor(t, "three drops", func() bool {
		return counter(o.Name, `passthrough_dropped_total{reason="short_dcid"}`) == 1 &&
			counter(o.Name, `passthrough_dropped_total{reason="version_negotiation"}`) == 1 &&
			counter(o.Name, `passthrough_dropped_total{reason="malformed"}`) == 1
	})
	if g.l.Flows() != 0 {
		t.Fatal("a dropped datagram opened a flow")
	}
	udpClient(t).WriteToUDP(longHeader(make([]byte, 16)), to)
	recvAny(t, ss)
	if g.l.Learned() != 0 {
		t.Fatal("a DCID over max_dcid_len_routed was learned")
	}
	udpClient(t).WriteToUDP(longHeader(make([]byte, 9)), to)
	recvAny(t, ss)
	if g.l.Learned() != 1 {
		t.Fatalf("the fallback learned %d client DCIDs, want 1", g.l.Learned())
	}
}

// max_quic_connections evicts the least recently active flow; the
// per-IP cap drops a client address's flow past it; idle flows and
// learned Connection IDs expire.
func TestGuard_FlowBounds(t *testing.T) {
	ss := newSinks(t, 1)
	o := defaultOpts(t.Name(), sinkPool(t, ss))
	o.MaxFlows = 2
	g := startGateway(t, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	for range 3 {
		udpClient(t).WriteToUDP(longHeader(make([]byte, 8)), to)
		recvAny(t, ss)
	}
	if g.l.Flows() != 2 || counter(o.Name, `passthrough_flow_evictions_total{reason="max_quic_connections"}`) != 1 {
		t.Fatalf("flows %d after 3 at a cap of 2", g.l.Flows())
	}
	g.l.sweep(g.l.now.Load() + int64(o.IdleTimeout))
	if g.l.Flows() != 0 || g.l.Learned() != 0 {
		t.Fatalf("after the idle timeout: %d flows, %d learned", g.l.Flows(), g.l.Learned())
	}

	ip := defaultOpts(t.Name()+"-ip", sinkPool(t, ss))
	ip.MaxFlowsPerIP = 1
	gi := startGateway(t, "127.0.0.1:0", ip)
	udpClient(t).WriteToUDP(longHeader(make([]byte, 8)), gi.l.Addr().(*net.UDPAddr))
	recvAny(t, ss)
	udpClient(t).WriteToUDP(longHeader(make([]byte, 8)), gi.l.Addr().(*net.UDPAddr))
	waitFor(t, "a per-IP drop", func() bool { return counter(ip.Name, `passthrough_dropped_total{reason="per_ip_cap"}`) == 1 })
}

// The per-flow backlog drops the newest datagram once full.
func TestGuard_BacklogDropsNewest(t *testing.T) {
	o := defaultOpts(t.Name(), sinkPool(t, newSinks(t, 1)))
	conn, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer conn.Close()
	l, err := New(conn, o)
	if err != nil {
		t.Fatal(err)
	}
	f := &flow{backlog: make(chan *[]byte, 2)} // no writer drains it
	for i := range 3 {
		l.enqueueLocked(f, []byte{byte(i)})
	}
	if len(f.backlog) != 2 || counter(o.Name, `passthrough_dropped_total{reason="backlog_full"}`) != 1 {
		t.Fatalf("backlog %d, drops %d", len(f.backlog), counter(o.Name, `passthrough_dropped_total{reason="backlog_full"}`))
	}
	if b := <-f.backlog; (*b)[0] != 0 {
		t.Fatal("the oldest datagram was dropped instead of the newest")
	}
}

// audit_throttle_window_secs: one log per reason per window.
func TestGuard_AuditThrottle(t *testing.T) {
	th := newThrottle(int64(time.Minute))
	if !th.allow(1, 0) || th.allow(1, int64(time.Second)) || !th.allow(2, int64(time.Second)) || !th.allow(1, int64(time.Minute)) {
		t.Fatal("throttle does not allow one event per kind per window")
	}
}
