package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bpf/lbnet"
)

const (
	xdpTCPPort = 7000
	xdpUDPPort = 7001
)

// requireXDP skips (or, with EG_REQUIRE_PRIVILEGED=1, fails) a test that
// needs root, network namespaces and XDP.
func requireXDP(t *testing.T, why any) {
	t.Helper()
	if os.Getenv("EG_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("privileged test cannot run, and EG_REQUIRE_PRIVILEGED=1: %v", why)
	}
	t.Skipf("needs root with CAP_BPF/CAP_NET_ADMIN, netns and XDP (EG_REQUIRE_PRIVILEGED=1 makes this a failure): %v", why)
}

// xdpLab is an lbnet topology with echo servers on every backend and the
// backends' decapsulators attached; the gateway runs in n.LB.
type xdpLab struct {
	n *lbnet.Net
}

func newXDPLab(t *testing.T, backends int) *xdpLab {
	t.Helper()
	if os.Geteuid() != 0 {
		requireXDP(t, "not root")
	}
	n, err := lbnet.Build(backends)
	if err != nil {
		requireXDP(t, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	for i, b := range n.Backends {
		if !n.TunnelDevices {
			d, err := bpf.LoadDecap(b.Addr4, b.Addr6)
			if err != nil {
				if bpf.IsUnavailable(err) {
					requireXDP(t, err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if err := b.NS.Run(func() error { return d.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("b%d", i+1)
		ln, err := b.NS.Listen("tcp", netip.AddrPortFrom(lbnet.VIP4, xdpTCPPort).String())
		if err != nil {
			t.Fatal(err)
		}
		pc, err := b.NS.ListenPacket("udp", netip.AddrPortFrom(lbnet.VIP4, xdpUDPPort).String())
		if err != nil {
			t.Fatal(err)
		}
		startNSEcho(t, name, ln, pc)
	}
	// The VIP is local on the balancer too, so the udp listener that is
	// the UDP service's userspace fallback can bind it.
	if err := n.LB.IP("addr", "add", lbnet.VIP4.String()+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	return &xdpLab{n: n}
}

// startNSEcho answers each TCP line and each datagram with "<name>:<it>".
func startNSEcho(t *testing.T, name string, ln net.Listener, pc net.PacketConn) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+":"+line); err != nil {
						return
					}
				}
			})
		}
	})
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// config is the gateway config: an explicit TCP service and a UDP
// service backed by a udp listener, over the backends kept by keep.
func (l *xdpLab) config(mode, ifname string, keep func(i int) bool) string {
	var tcpBE, udpBE []string
	for i, b := range l.n.Backends {
		if keep != nil && !keep(i) {
			continue
		}
		tcpBE = append(tcpBE, fmt.Sprintf("{ address = %q }", netip.AddrPortFrom(b.Addr4, xdpTCPPort)))
		udpBE = append(udpBE, fmt.Sprintf("{ address = %q, protocol = \"udp\" }", netip.AddrPortFrom(b.Addr4, xdpUDPPort)))
	}
	return fmt.Sprintf(`
[runtime]
xdp_enabled = true
xdp_interface = %q
xdp_mode = %q

[[listeners]]
name = "dns"
address = "%s"
protocol = "udp"
backends = [%s]

[xdp]
source_v4 = "%s"
deny = ["%s/32"]

[[xdp.services]]
vip = "%s"
port = %d
protocol = "tcp"
backends = [%s]

[[xdp.services]]
listener = "dns"
`, ifname, mode, netip.AddrPortFrom(lbnet.VIP4, xdpUDPPort), strings.Join(udpBE, ", "),
		lbnet.LBAddr4, lbnet.DeniedAddr4, lbnet.VIP4, xdpTCPPort, strings.Join(tcpBE, ", "))
}

// bootIn loads toml and boots a gateway in ns (XDP attaches there, next
// hops resolve there). The gateway drains when the test ends.
func bootIn(t *testing.T, ns lbnet.NS, toml string) (*Gateway, error) {
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
		return g.Start(ctx)
	})
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() { g.Drain(2 * time.Second); cancel() })
	return g, nil
}

// tcpBackend opens a connection from the client to the VIP and returns
// the name of the backend that answers.
func (l *xdpLab) tcpBackend(t *testing.T, laddr netip.Addr) (string, error) {
	t.Helper()
	c, err := l.n.Client.Dial("tcp", &net.TCPAddr{IP: laddr.AsSlice()}, netip.AddrPortFrom(lbnet.VIP4, xdpTCPPort).String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	name, rest, _ := strings.Cut(line, ":")
	if rest != "ping\n" {
		return "", fmt.Errorf("tcp echo %q", line)
	}
	return name, nil
}

// udpBackend sends one datagram from a fresh client port and returns the
// backend that answers.
func (l *xdpLab) udpBackend(t *testing.T) (string, error) {
	t.Helper()
	c, err := l.n.Client.Dial("udp", nil, netip.AddrPortFrom(lbnet.VIP4, xdpUDPPort).String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for try := range 3 { // UDP: the first datagram may meet neighbour resolution
		c.SetDeadline(time.Now().Add(time.Duration(try+1) * 500 * time.Millisecond))
		if _, err := io.WriteString(c, "ping"); err != nil {
			return "", err
		}
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		name, rest, _ := strings.Cut(string(buf[:n]), ":")
		if rest != "ping" {
			return "", fmt.Errorf("udp echo %q", buf[:n])
		}
		return name, nil
	}
	return "", fmt.Errorf("udp: no answer")
}

// spread counts which backends answer flows TCP and UDP flows.
func (l *xdpLab) spread(t *testing.T, flows int) (tcp, udp map[string]int) {
	t.Helper()
	tcp, udp = map[string]int{}, map[string]int{}
	for range flows {
		be, err := l.tcpBackend(t, lbnet.ClientAddr4)
		if err != nil {
			t.Fatalf("tcp through xdp: %v", err)
		}
		tcp[be]++
		if be, err = l.udpBackend(t); err != nil {
			t.Fatalf("udp through xdp: %v", err)
		}
		udp[be]++
	}
	return tcp, udp
}

// xdpCounter reads one xdp_* series from the metrics output.
func xdpCounter(t *testing.T, series string) uint64 {
	t.Helper()
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)$`).FindSubmatch(b.Bytes())
	if m == nil {
		t.Fatalf("no %s in the metrics", series)
	}
	v, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return v
}

func xdpAttached(t *testing.T, ns lbnet.NS, ifname string) bool {
	t.Helper()
	var on bool
	if err := ns.Run(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		on = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return on
}

func TestXDP_GatewayBalancesTCPAndUDPReloadsAndDetaches(t *testing.T) {
	lab := newXDPLab(t, 3)
	g, err := bootIn(t, lab.n.LB, lab.config("generic", lbnet.Ifname, nil))
	if err != nil {
		t.Fatal(err)
	}
	if g.xdp == nil {
		t.Fatal("xdp did not attach")
	}
	if mode, ok := g.xdp.Mode(); !ok || mode != bpf.ModeGeneric {
		t.Fatalf("attached %v %v, want generic", mode, ok)
	}
	if !xdpAttached(t, lab.n.LB, lbnet.Ifname) {
		t.Fatal("the interface shows no XDP program")
	}
	txBefore := xdpCounter(t, `expressgateway_xdp_packets_total{action="tx"}`)
	if h := xdpCounter(t, fmt.Sprintf(`expressgateway_xdp_maglev_table_hash{service="tcp/%s:%d"}`, lbnet.VIP4, xdpTCPPort)); h == 0 {
		t.Error("the TCP service's table fingerprint is 0")
	}

	const flows = 30
	tcp, udp := lab.spread(t, flows)
	t.Logf("before reload: tcp %v, udp %v", tcp, udp)
	for _, be := range []string{"b1", "b2", "b3"} {
		if tcp[be] == 0 || udp[be] == 0 {
			t.Fatalf("backend %s got no flows: tcp %v, udp %v", be, tcp, udp)
		}
	}
	// The udp listener on the VIP saw nothing: XDP took every datagram.
	if n := (&testGateway{Gateway: g}).udpRelayFlows(t, "dns"); n != 0 {
		t.Fatalf("userspace relay has %d flows; XDP should have forwarded them all", n)
	}
	if tx := xdpCounter(t, `expressgateway_xdp_packets_total{action="tx"}`) - txBefore; tx < 2*flows {
		t.Fatalf("expressgateway_xdp_packets_total{action=tx} grew by %d, want ≥ %d", tx, 2*flows)
	}
	if xdpCounter(t, `expressgateway_xdp_bytes_total{action="tx"}`) == 0 {
		t.Fatal("expressgateway_xdp_bytes_total{action=tx} is 0")
	}

	// The deny list drops the denied source.
	if _, err := lab.tcpBackend(t, lbnet.DeniedAddr4); err == nil {
		t.Fatal("a denied source reached a backend")
	}

	// Reload without b3: new flows reach b1 and b2 only; nothing detaches.
	next := loadConfig(t, lab.config("generic", lbnet.Ifname, func(i int) bool { return i != 2 }))
	next.Listeners[0].Address = g.cfg.Listeners[0].Address
	if err := lab.n.LB.Run(func() error { return g.Reload(next) }); err != nil {
		t.Fatal(err)
	}
	tcp, udp = lab.spread(t, flows)
	t.Logf("after reload: tcp %v, udp %v", tcp, udp)
	if tcp["b3"] != 0 || udp["b3"] != 0 || tcp["b1"] == 0 || tcp["b2"] == 0 {
		t.Fatalf("after removing b3: tcp %v, udp %v", tcp, udp)
	}
	if !xdpAttached(t, lab.n.LB, lbnet.Ifname) {
		t.Fatal("reload detached XDP")
	}

	// Drain detaches: the VIP's TCP port now meets the balancer's own
	// stack, which has no listener there.
	g.Drain(2 * time.Second)
	if g.xdp != nil || xdpAttached(t, lab.n.LB, lbnet.Ifname) {
		t.Fatal("xdp still attached after drain")
	}
	if be, err := lab.tcpBackend(t, lbnet.ClientAddr4); err == nil {
		t.Fatalf("after drain a connection still reached %s", be)
	}
	if xdpCounter(t, "expressgateway_xdp_attached") != 0 {
		t.Fatal("expressgateway_xdp_attached still 1 after drain")
	}
}

func TestXDP_NativeModeWithoutDriverSupportFailsTheBoot(t *testing.T) {
	lab := newXDPLab(t, 1)
	// lo has no driver-mode XDP.
	_, err := bootIn(t, lab.n.LB, lab.config("native", "lo", nil))
	if err == nil {
		t.Fatal("native mode on lo booted")
	}
	if !bpf.IsUnavailable(err) || !strings.Contains(err.Error(), "xdp_mode = \"native\"") {
		t.Fatalf("want an unavailable error naming native mode, got %v", err)
	}
	t.Logf("boot refused: %v", err)
	// auto on the same interface falls back to generic and boots.
	g, err := bootIn(t, lab.n.LB, lab.config("auto", "lo", nil))
	if err != nil {
		t.Fatal(err)
	}
	if mode, ok := g.xdp.Mode(); !ok || mode != bpf.ModeGeneric {
		t.Fatalf("auto on lo attached %v %v, want generic", mode, ok)
	}
}

// xdpUnavailableConfig enables XDP on an interface that does not exist:
// XDP is unavailable whether or not the test runs as root.
func xdpUnavailableConfig(t *testing.T, mode string) string {
	backend := udpEcho(t, "b1")
	return fmt.Sprintf(`
[runtime]
xdp_enabled = true
xdp_interface = "eg-missing0"
xdp_mode = %q

[[listeners]]
name = "dns"
address = "127.0.0.1:0"
protocol = "udp"
backends = [{ address = %q, protocol = "udp" }]

[xdp]
gateway_mac = "02:00:00:00:00:01"
source_v4 = "127.0.0.1"

[[xdp.services]]
vip = "127.0.0.1"
port = 9
protocol = "udp"
backends = [{ address = "127.0.0.2:9" }]
`, mode, backend)
}

func TestXDP_AutoModeFallsBackToUserspaceWhenUnavailable(t *testing.T) {
	g := startGateway(t, xdpUnavailableConfig(t, "auto"))
	if g.xdp != nil {
		t.Fatal("xdp attached to a missing interface")
	}
	c := udpDial(t, g.Addr("dns"))
	if got := udpAsk(t, c, "hi"); got != "b1:hi" {
		t.Fatalf("userspace udp path: got %q", got)
	}
}

func TestXDP_NativeModeRefusesToBootWhenUnavailable(t *testing.T) {
	cfg := loadConfig(t, xdpUnavailableConfig(t, "native"))
	g, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	err = g.Start(context.Background())
	if err == nil {
		g.Drain(time.Second)
		t.Fatal("native mode booted without XDP")
	}
	if !bpf.IsUnavailable(err) || !strings.Contains(err.Error(), "eg-missing0") {
		t.Fatalf("want the reason naming the interface, got %v", err)
	}
	t.Logf("boot refused: %v", err)
	// Nothing was left open: the listener's port was never bound.
	if g.Addr("dns") != nil {
		t.Fatal("a listener opened although the boot failed")
	}
}
