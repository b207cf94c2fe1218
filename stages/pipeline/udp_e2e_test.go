package pipeline

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
)

// udpEcho is a UDP backend that answers each datagram with
// "<name>:<datagram>". It stops when the test ends.
func udpEcho(t *testing.T, name string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr().String()
}

// udpListenerConfig is a udp listener over the given backends
// (address → weight) with extra [listeners.udp] lines.
func udpListenerConfig(name string, backends []string, weights []int, udp string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[listeners]]\nname = %q\naddress = \"127.0.0.1:0\"\nprotocol = \"udp\"\n", name)
	b.WriteString("backends = [")
	for i, a := range backends {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		fmt.Fprintf(&b, "{ address = %q, protocol = \"udp\", weight = %d },", a, w)
	}
	b.WriteString("]\n")
	if udp != "" {
		b.WriteString("[listeners.udp]\n" + udp + "\n")
	}
	return b.String()
}

// udpAsk sends msg on c and returns the answer.
func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("answer to %q: %v", msg, err)
	}
	return string(buf[:n])
}

// loadConfig loads a TOML config from a temporary file.
func loadConfig(t *testing.T, toml string) *conf.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eg.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func udpDial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (g *testGateway) udpRelayFlows(t *testing.T, name string) int {
	t.Helper()
	for _, l := range g.listeners {
		if l.cfg.Name == name && l.udp != nil {
			return l.udp.relay.Flows()
		}
	}
	t.Fatalf("no udp listener %q", name)
	return 0
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUDP_RelaysEveryFlowToOneBackendAndBack(t *testing.T) {
	backends := []string{udpEcho(t, "b1"), udpEcho(t, "b2"), udpEcho(t, "b3")}
	g := startGateway(t, udpListenerConfig("dns", backends, nil, ""))
	addr := g.Addr("dns")
	const flows, msgs = 9, 5
	perBackend := map[string]int{}
	for i := range flows {
		c := udpDial(t, addr)
		var first string
		for j := range msgs {
			msg := fmt.Sprintf("flow%d-msg%d", i, j)
			got := udpAsk(t, c, msg)
			be, body, ok := strings.Cut(got, ":")
			if !ok || body != msg {
				t.Fatalf("flow %d: got %q for %q", i, got, msg)
			}
			if j == 0 {
				first = be
				perBackend[be]++
			} else if be != first {
				t.Fatalf("flow %d moved from %s to %s", i, first, be)
			}
		}
	}
	// Round robin over three equal backends: three flows each.
	for _, be := range []string{"b1", "b2", "b3"} {
		if perBackend[be] != flows/3 {
			t.Fatalf("flows per backend %v, want %d each", perBackend, flows/3)
		}
	}
	if n := g.udpRelayFlows(t, "dns"); n != flows {
		t.Fatalf("flow table holds %d flows, want %d", n, flows)
	}
}

func TestUDP_SpreadFollowsTheWeights(t *testing.T) {
	backends := []string{udpEcho(t, "b1"), udpEcho(t, "b2"), udpEcho(t, "b3")}
	g := startGateway(t, udpListenerConfig("dns", backends, []int{1, 2, 3}, ""))
	addr := g.Addr("dns")
	perBackend := map[string]int{}
	const flows = 60
	for i := range flows {
		c := udpDial(t, addr)
		be, _, _ := strings.Cut(udpAsk(t, c, fmt.Sprint("hello", i)), ":")
		perBackend[be]++
	}
	// Smooth weighted round robin is exact over a whole number of rounds.
	want := map[string]int{"b1": 10, "b2": 20, "b3": 30}
	for be, n := range want {
		if perBackend[be] != n {
			t.Fatalf("flows per backend %v, want %v", perBackend, want)
		}
	}
}

func TestUDP_ForgetsIdleFlows(t *testing.T) {
	backends := []string{udpEcho(t, "b1")}
	g := startGateway(t, udpListenerConfig("dns", backends, nil, "idle_timeout_ms = 200"))
	c := udpDial(t, g.Addr("dns"))
	idleBefore := metrics.GetOrCreateCounter(`expressgateway_l4_udp_flow_evictions_total{listener="dns",reason="idle"}`).Get()
	if got := udpAsk(t, c, "one"); got != "b1:one" {
		t.Fatalf("got %q", got)
	}
	// Traffic keeps the flow: 4 exchanges 100 ms apart outlive the timeout.
	for i := range 4 {
		time.Sleep(100 * time.Millisecond)
		udpAsk(t, c, fmt.Sprint("keep", i))
		if n := g.udpRelayFlows(t, "dns"); n != 1 {
			t.Fatalf("active flow forgotten after %d exchanges (%d flows)", i+1, n)
		}
	}
	waitFor(t, "the idle flow to expire", func() bool { return g.udpRelayFlows(t, "dns") == 0 })
	if d := metrics.GetOrCreateCounter(`expressgateway_l4_udp_flow_evictions_total{listener="dns",reason="idle"}`).Get() - idleBefore; d != 1 {
		t.Fatalf("idle evictions +%d, want +1", d)
	}
	// The same client starts a new flow.
	if got := udpAsk(t, c, "two"); got != "b1:two" {
		t.Fatalf("after expiry got %q", got)
	}
	if n := g.udpRelayFlows(t, "dns"); n != 1 {
		t.Fatalf("%d flows after the new datagram, want 1", n)
	}
}

func TestUDP_FlowTableCapEvictsTheLeastRecentFlow(t *testing.T) {
	backends := []string{udpEcho(t, "b1")}
	g := startGateway(t, udpListenerConfig("dns", backends, nil, "max_flows = 2"))
	addr := g.Addr("dns")
	evicted := func() uint64 {
		return metrics.GetOrCreateCounter(`expressgateway_l4_udp_flow_evictions_total{listener="dns",reason="max_flows"}`).Get()
	}
	before := evicted()
	a, b, c := udpDial(t, addr), udpDial(t, addr), udpDial(t, addr)
	udpAsk(t, a, "a1")
	udpAsk(t, b, "b1")
	udpAsk(t, a, "a2") // a is now the most recent; b the least
	udpAsk(t, c, "c1") // evicts b
	if n := g.udpRelayFlows(t, "dns"); n != 2 {
		t.Fatalf("%d flows, cap is 2", n)
	}
	if d := evicted() - before; d != 1 {
		t.Fatalf("evictions +%d, want +1", d)
	}
	udpAsk(t, a, "a3") // a survived: no eviction
	if d := evicted() - before; d != 1 {
		t.Fatalf("a was evicted (evictions +%d)", d)
	}
	if got := udpAsk(t, b, "b2"); got != "b1:b2" { // b comes back as a new flow, evicting c
		t.Fatalf("got %q", got)
	}
	if d := evicted() - before; d != 2 {
		t.Fatalf("evictions +%d, want +2", d)
	}
	for i := range 200 { // many flows through a table of 2 stay bounded
		udpAsk(t, udpDial(t, addr), fmt.Sprint("x", i))
	}
	if n := g.udpRelayFlows(t, "dns"); n != 2 {
		t.Fatalf("%d flows, cap is 2", n)
	}
}

func TestUDP_ReloadSendsNewFlowsToTheNewBackends(t *testing.T) {
	b1, b2 := udpEcho(t, "b1"), udpEcho(t, "b2")
	g := startGateway(t, udpListenerConfig("dns", []string{b1}, nil, ""))
	addr := g.Addr("dns")
	old := udpDial(t, addr)
	if got := udpAsk(t, old, "x"); got != "b1:x" {
		t.Fatalf("got %q", got)
	}
	next := loadConfig(t, strings.Replace(udpListenerConfig("dns", []string{b2}, nil, ""), "127.0.0.1:0", addr.String(), 1))
	next.Listeners[0].Address = g.cfg.Listeners[0].Address // same listener identity
	if err := g.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := udpAsk(t, udpDial(t, addr), "y"); got != "b2:y" {
		t.Fatalf("new flow after reload got %q, want b2", got)
	}
	if got := udpAsk(t, old, "z"); got != "b1:z" {
		t.Fatalf("established flow after reload got %q, want b1 (flows keep their backend)", got)
	}
}
