package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bpf/lbnet"
	"github.com/expressgateway/expressgateway/stages/health"
	"github.com/expressgateway/expressgateway/stages/route"
)

// nsProber is the tcp health check run from inside the balancer's
// namespace: the gateway's own goroutines live in the test's namespace,
// from which the lab's backends cannot be reached.
type nsProber struct{ ns lbnet.NS }

func (p nsProber) Probe(ctx context.Context, b *route.Backend) error {
	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := p.ns.Dial("tcp", nil, b.Address, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

func (nsProber) Close() {}

// healthPort is a backend's checked listener on its own address (the VIP
// listener serves the XDP flows): closing it fails the backend's checks.
type healthPort struct {
	t    *testing.T
	ns   lbnet.NS
	addr string
	mu   sync.Mutex
	ln   net.Listener
	wg   sync.WaitGroup
}

func openHealthPort(t *testing.T, ns lbnet.NS, addr string) *healthPort {
	h := &healthPort{t: t, ns: ns, addr: addr}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *healthPort) open() {
	h.t.Helper()
	ln, err := h.ns.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.ln = ln
	h.mu.Unlock()
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
}

func (h *healthPort) close() {
	h.mu.Lock()
	if h.ln != nil {
		h.ln.Close()
		h.ln = nil
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// healthConfig is a pool with tcp checks on the backends' own addresses
// feeding a TCP XDP service on the VIP.
func (l *xdpLab) healthConfig() string {
	var be []string
	for _, b := range l.n.Backends {
		be = append(be, fmt.Sprintf("{ address = %q, protocol = \"tcp\" }", netip.AddrPortFrom(b.Addr4, xdpTCPPort)))
	}
	return fmt.Sprintf(`
[runtime]
xdp_enabled = true
xdp_interface = %q
xdp_mode = "generic"

[[listeners]]
name = "web"
address = "127.0.0.1:0"
protocol = "tcp"
pool = "web"

[[pools]]
name = "web"
backends = [%s]

[pools.health_check]
type = "tcp"
interval_ms = 100
timeout_ms = 80
rise = 1
fall = 2

[xdp]
source_v4 = "%s"

[[xdp.services]]
vip = "%s"
port = %d
protocol = "tcp"
pool = "web"
`, lbnet.Ifname, strings.Join(be, ", "), lbnet.LBAddr4, lbnet.VIP4, xdpTCPPort)
}

// bootWithNSChecks boots toml in ns like bootIn, with every pool's checks
// probing from inside ns.
func bootWithNSChecks(t *testing.T, ns lbnet.NS, toml string) *Gateway {
	t.Helper()
	cfg := loadConfig(t, toml)
	log := zerolog.New(io.Discard)
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(t))
	}
	var g *Gateway
	ctx, cancel := context.WithCancel(context.Background())
	err := ns.Run(func() error {
		var err error
		if g, err = New(cfg, log); err != nil {
			return err
		}
		stopCheckers(g.checkers) // never started
		g.checkers = nil
		for _, pc := range cfg.Pools {
			c, err := health.New(g.pools[pc.Name], pc, log, health.Options{Prober: nsProber{ns}})
			if err != nil {
				return err
			}
			g.checkers = append(g.checkers, c)
		}
		return g.Start(ctx)
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Drain(2 * time.Second); cancel() })
	return g
}

// tcpSpread opens flows TCP flows to the VIP and counts who answers; every
// flow must be answered.
func (l *xdpLab) tcpSpread(t *testing.T, flows int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range flows {
		be, err := l.tcpBackend(t, lbnet.ClientAddr4)
		if err != nil {
			t.Fatalf("tcp through xdp: %v", err)
		}
		got[be]++
	}
	return got
}

// pinnedFlow dials the VIP until a flow lands on want (at most tries
// dials) and returns it open.
func (l *xdpLab) pinnedFlow(t *testing.T, want string, tries int) (net.Conn, *bufio.Reader) {
	t.Helper()
	for range tries {
		c, err := l.n.Client.Dial("tcp", &net.TCPAddr{IP: lbnet.ClientAddr4.AsSlice()}, netip.AddrPortFrom(lbnet.VIP4, xdpTCPPort).String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		if name := echoName(t, c, r); name == want {
			return c, r
		}
		c.Close()
	}
	t.Fatalf("no flow reached %s in %d tries", want, tries)
	return nil, nil
}

func echoName(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(line, ":")
	return name
}

// Issue 5: a backend that fails its health checks is drained from the
// Maglev table (no new XDP flows; its established flow stays), and gets
// new flows again once it passes.
func TestXDP_UnhealthyBackendGetsNoNewFlowsUntilItRecovers(t *testing.T) {
	lab := newXDPLab(t, 3)
	var ports []*healthPort
	for _, b := range lab.n.Backends {
		ports = append(ports, openHealthPort(t, b.NS, netip.AddrPortFrom(b.Addr4, xdpTCPPort).String()))
	}
	g := bootWithNSChecks(t, lab.n.LB, lab.healthConfig())
	if g.xdp == nil || g.xdpWatch == nil {
		t.Fatal("xdp did not attach")
	}
	pool := g.pools["web"]
	b2 := pool.Backends()[1]

	const flows = 30
	got := lab.tcpSpread(t, flows)
	t.Logf("all healthy: %v", got)
	for _, be := range []string{"b1", "b2", "b3"} {
		if got[be] == 0 {
			t.Fatalf("backend %s got no flows: %v", be, got)
		}
	}
	pinned, pr := lab.pinnedFlow(t, "b2", 50)
	defer pinned.Close()

	// b2's checked port goes away: after fall failed checks it is down,
	// and the watcher drains it from the ring.
	applied := g.xdpWatch.applied.Load()
	ports[1].close()
	waitFor(t, "b2 marked down", b2.Down)
	waitFor(t, "the health apply", func() bool { return g.xdpWatch.applied.Load() > applied })
	got = lab.tcpSpread(t, flows)
	t.Logf("b2 down: %v", got)
	if got["b2"] != 0 || got["b1"] == 0 || got["b3"] == 0 {
		t.Fatalf("with b2 down: %v", got)
	}
	if name := echoName(t, pinned, pr); name != "b2" {
		t.Fatalf("the established flow moved to %s; a drained backend keeps its flows", name)
	}
	if n := xdpCounter(t, `expressgateway_xdp_health_apply_total{outcome="failed"}`); n != 0 {
		t.Fatalf("%d health applies failed", n)
	}

	// b2 passes again (rise = 1): it gets new flows.
	applied = g.xdpWatch.applied.Load()
	ports[1].open()
	waitFor(t, "b2 marked up", func() bool { return !b2.Down() })
	waitFor(t, "the health apply", func() bool { return g.xdpWatch.applied.Load() > applied })
	got = lab.tcpSpread(t, flows)
	t.Logf("b2 back: %v", got)
	if got["b2"] == 0 {
		t.Fatalf("recovered b2 got no new flows: %v", got)
	}
}
