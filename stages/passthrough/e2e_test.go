package passthrough

import (
	"net"
	"sync"
	"testing"

	"github.com/expressgateway/expressgateway/quiclb"
)

var testKey = []byte{0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80, 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f}

// Connections through the passthrough spread over the backends (the
// 4-tuple hash: these servers mint random Connection IDs), each stays on
// one backend for all its streams, and the certificate the client
// verifies is the backend's own: nothing is decrypted on the way.
func TestE2E_SpreadAndStick(t *testing.T) {
	ca := newCA()
	bs := []*backend{startBackend(t, ca, "plain-a", nil), startBackend(t, ca, "plain-b", nil), startBackend(t, ca, "plain-c", nil)}
	g := startGateway(t, "127.0.0.1:0", defaultOpts(t.Name(), testPool(t, bs...)))
	seen := map[string]int{}
	for range 24 {
		c := dial(t, ca, g.l.Addr())
		first := ask(t, c.conn)
		for range 2 {
			if got := ask(t, c.conn); got != first {
				t.Fatalf("a connection moved from %s to %s", first, got)
			}
		}
		if c.peerName() != first {
			t.Fatalf("client verified %q's certificate but %q answered", c.peerName(), first)
		}
		seen[first]++
	}
	if len(seen) < 2 {
		t.Fatalf("24 connections all went to %v", seen)
	}
	if counter(t.Name(), `passthrough_datagrams_total{route="fallback"}`) < 24 {
		t.Fatal("new connections did not take the 4-tuple fallback")
	}
	t.Logf("spread: %v", seen)
}

// A backend minting QUIC-LB Connection IDs is routed by them with no
// state: after the gateway restarts (empty tables) and the client moves to
// a new source port (a 4-tuple no hash has seen), every connection still
// reaches its backend, by route="cid", for each encoding.
func TestE2E_QUICLBStatelessAcrossRestartAndMigration(t *testing.T) {
	for _, cfg := range []quiclb.Config{
		{ID: 0, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: testKey},
		{ID: 1, ServerIDLen: 3, NonceLen: 6, Encoding: quiclb.FourPass, Key: testKey},
		{ID: 2, ServerIDLen: 1, NonceLen: 8, Encoding: quiclb.Plaintext},
	} {
		t.Run(cfg.Encoding.String(), func(t *testing.T) {
			ca := newCA()
			bs, q := quicLBBackends(t, ca, cfg, cfg.Encoding.String()+"-", 3)
			pool := testPool(t, bs...)
			o := defaultOpts(t.Name()+"-1", pool)
			o.QUICLB = []QUICLB{q}
			g := startGateway(t, "127.0.0.1:0", o)
			addr := g.l.Addr().String()
			var cs []*client
			var names []string
			for range 6 {
				c := dial(t, ca, g.l.Addr())
				cs = append(cs, c)
				names = append(names, ask(t, c.conn))
			}
			g.stop()
			o.Name = t.Name() + "-2"
			g2 := startGateway(t, addr, o)
			for i, c := range cs {
				c.migrate(t)
				if got := ask(t, c.conn); got != names[i] {
					t.Fatalf("connection %d moved from %s to %s across restart and migration", i, names[i], got)
				}
			}
			if counter(o.Name, `passthrough_datagrams_total{route="cid"}`) < uint64(len(cs)) {
				t.Fatal("the restarted gateway did not route by QUIC-LB Connection IDs")
			}
			if n := counter(o.Name, `passthrough_datagrams_total{route="fallback"}`); n != 0 {
				t.Fatalf("the restarted gateway took the fallback %d times", n)
			}
			if g2.l.Learned() != 0 {
				t.Fatalf("the restarted gateway learned %d Connection IDs from QUIC-LB backends", g2.l.Learned())
			}
		})
	}
}

// A client that migrates to a new source port (AddPath, Probe, Switch)
// keeps its backend.
func TestE2E_MigrationKeepsBackend(t *testing.T) {
	ca := newCA()
	bs, q := quicLBBackends(t, ca, quiclb.Config{ID: 3, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: testKey}, "mig-", 3)
	o := defaultOpts(t.Name(), testPool(t, bs...))
	o.QUICLB = []QUICLB{q}
	g := startGateway(t, "127.0.0.1:0", o)
	for range 4 {
		c := dial(t, ca, g.l.Addr())
		before := ask(t, c.conn)
		c.migrate(t)
		if after := ask(t, c.conn); after != before {
			t.Fatalf("migration moved the connection from %s to %s", before, after)
		}
	}
}

// nat is a test NAT between a client and the gateway whose outside port
// can change mid-connection (a NAT rebinding): the same Connection IDs
// arrive from a new 4-tuple.
type nat struct {
	inside  *net.UDPConn // the client sends here
	target  *net.UDPAddr
	mu      sync.Mutex
	outside *net.UDPConn
	client  *net.UDPAddr
	wg      sync.WaitGroup
}

func newNAT(t *testing.T, target net.Addr) *nat {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &nat{inside: in, target: target.(*net.UDPAddr)}
	n.rebind(t)
	n.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			m, from, err := in.ReadFromUDP(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.client = from
			out := n.outside
			n.mu.Unlock()
			out.WriteToUDP(buf[:m], n.target)
		}
	})
	t.Cleanup(func() {
		in.Close()
		n.mu.Lock()
		n.outside.Close()
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

// rebind gives the NAT a new outside socket (new source port).
func (n *nat) rebind(t *testing.T) {
	t.Helper()
	out, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	old := n.outside
	n.outside = out
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
	n.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			m, err := out.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			c := n.client
			n.mu.Unlock()
			if c != nil {
				n.inside.WriteToUDP(buf[:m], c)
			}
		}
	})
}

// A NAT rebinding (new source port, same Connection ID) keeps a
// connection to a server without QUIC-LB on its backend: the server's
// Source Connection ID was learned from its reply. With
// strict_source_binding the rebound packets are dropped instead, since
// only a QUIC-LB Connection ID may move a connection.
func TestE2E_NATRebindingKeepsBackendByLearnedCID(t *testing.T) {
	ca := newCA()
	bs := []*backend{startBackend(t, ca, "nat-a", nil), startBackend(t, ca, "nat-b", nil), startBackend(t, ca, "nat-c", nil)}
	pool := testPool(t, bs...)
	g := startGateway(t, "127.0.0.1:0", defaultOpts(t.Name(), pool))
	for range 6 {
		n := newNAT(t, g.l.Addr())
		c := dial(t, ca, n.inside.LocalAddr())
		before := settle(t, g, c)
		n.rebind(t)
		if after := ask(t, c.conn); after != before {
			t.Fatalf("a NAT rebinding moved the connection from %s to %s", before, after)
		}
	}
	if counter(t.Name(), `passthrough_datagrams_total{route="learned"}`) < 6 {
		t.Fatal("rebound connections were not routed by learned Connection IDs")
	}

	strict := defaultOpts(t.Name()+"-strict", pool)
	strict.StrictSourceBinding = true
	gs := startGateway(t, "127.0.0.1:0", strict)
	n := newNAT(t, gs.l.Addr())
	c := dial(t, ca, n.inside.LocalAddr())
	ask(t, c.conn)
	n.rebind(t)
	sendPing(t, c)
	waitFor(t, "a rebound short header dropped by strict_source_binding", func() bool {
		return counter(strict.Name, `passthrough_dropped_total{reason="strict_source_binding"}`) > 0
	})
	if counter(strict.Name, `passthrough_datagrams_total{route="learned"}`) != 0 {
		t.Fatal("strict_source_binding routed a short header by a learned Connection ID")
	}
}

// settle asks until the client's Connection ID has stopped changing, and
// returns the backend's name. quic-go's client moves to a new Connection
// ID of the server's as soon as it has one after the handshake; the
// listener learns it from the flow's short headers, but a rebinding that
// came first would find a Connection ID it never saw (only QUIC-LB
// Connection IDs route without having been seen).
func settle(t *testing.T, g *gateway, c *client) string {
	t.Helper()
	name := ask(t, c.conn)
	for prev, i := -1, 0; i < 20; i++ {
		n := g.l.Learned()
		if n == prev {
			break
		}
		prev = n
		ask(t, c.conn)
	}
	return name
}

// sendPing makes the client send a short-header packet now (a stream
// opening), without waiting for an answer.
func sendPing(t *testing.T, c *client) {
	t.Helper()
	s, err := c.conn.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("ping"))
	s.Close()
}
