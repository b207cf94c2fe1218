package bpf_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bpf/lbnet"
)

const (
	tcpPort = 7000
	udpPort = 7001
	ioWait  = 2 * time.Second // per read/write; a lost reply fails fast
	// deniedWait is how long a denied client waits for nothing.
	deniedWait = 500 * time.Millisecond
)

func requirePrivileged(t *testing.T, why any) {
	t.Helper()
	if os.Getenv("EG_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("privileged test cannot run, and EG_REQUIRE_PRIVILEGED=1: %v", why)
	}
	t.Skipf("needs root with CAP_BPF/CAP_NET_ADMIN, netns and XDP (EG_REQUIRE_PRIVILEGED=1 makes this a failure): %v", why)
}

// lab is a running topology: the balancer attached, echo servers up.
type lab struct {
	net     *lbnet.Net
	prog    *bpf.Program
	weights []uint32
}

// newLab builds the namespaces, attaches the balancer in generic mode and
// starts a TCP and a UDP echo server (v4 and v6) on every backend. Each
// server prefixes its answer with the backend's name ("b1:").
func newLab(t *testing.T, weights []uint32) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		requirePrivileged(t, "not root")
	}
	n, err := lbnet.Build(len(weights))
	if err != nil {
		requirePrivileged(t, err)
	}
	l := &lab{net: n, weights: weights}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})

	prog, err := bpf.Load(bpf.Options{})
	if err != nil {
		if bpf.IsUnavailable(err) {
			requirePrivileged(t, err)
		}
		t.Fatal(err)
	}
	l.prog = prog
	t.Cleanup(func() {
		if err := prog.Close(); err != nil {
			t.Errorf("close program: %v", err)
		}
	})
	if err := n.LB.Run(func() error { return prog.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
		if bpf.IsUnavailable(err) {
			requirePrivileged(t, err)
		}
		t.Fatal(err)
	}
	if mode, ok := prog.Mode(); !ok || mode != bpf.ModeGeneric {
		t.Fatalf("attached mode %v %v, want generic", mode, ok)
	}

	for i, b := range n.Backends {
		if !n.TunnelDevices {
			d, err := bpf.LoadDecap(b.Addr4, b.Addr6)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if err := b.NS.Run(func() error { return d.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("b%d", i+1)
		for _, vip := range []netip.Addr{lbnet.VIP4, lbnet.VIP6} {
			ln, err := b.NS.Listen("tcp", netip.AddrPortFrom(vip, tcpPort).String())
			if err != nil {
				t.Fatal(err)
			}
			pc, err := b.NS.ListenPacket("udp", netip.AddrPortFrom(vip, udpPort).String())
			if err != nil {
				t.Fatal(err)
			}
			srv := &echoServer{ln: ln, pc: pc, name: name, conns: map[net.Conn]struct{}{}}
			srv.start()
			t.Cleanup(srv.close)
		}
	}
	if err := prog.Apply(l.state(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if n.TunnelDevices {
		t.Log("backends decapsulate with ipip/ip6tnl devices")
	} else {
		t.Log("kernel has no ipip/ip6tnl: backends decapsulate with bpf.Decap in XDP")
	}
	return l
}

// state is the balancer config: TCP and UDP services on both VIPs over
// the backends kept by keep (nil: all), and the deny list.
func (l *lab) state(keep func(i int) bool, deny []netip.Prefix) bpf.State {
	var v4, v6 []bpf.Backend
	for i, b := range l.net.Backends {
		if keep != nil && !keep(i) {
			continue
		}
		// The Maglev name is the host, so a backend keeps its slots in
		// both families' tables.
		name := fmt.Sprintf("b%d", i+1)
		v4 = append(v4, bpf.Backend{Name: name, Addr: b.Addr4, Weight: l.weights[i], MAC: b.MAC})
		v6 = append(v6, bpf.Backend{Name: name, Addr: b.Addr6, Weight: l.weights[i], MAC: b.MAC})
	}
	return bpf.State{
		Services: []bpf.Service{
			{VIP: lbnet.VIP4, Port: tcpPort, Proto: bpf.TCP, Backends: v4},
			{VIP: lbnet.VIP4, Port: udpPort, Proto: bpf.UDP, Backends: v4},
			{VIP: lbnet.VIP6, Port: tcpPort, Proto: bpf.TCP, Backends: v6},
			{VIP: lbnet.VIP6, Port: udpPort, Proto: bpf.UDP, Backends: v6},
		},
		Deny:     deny,
		SourceV4: lbnet.LBAddr4,
		SourceV6: lbnet.LBAddr6,
	}
}

// echoServer is one backend's TCP and UDP echo: each line or datagram is
// answered with "<name>:<line>". close stops it and waits for its
// goroutines.
type echoServer struct {
	ln    net.Listener
	pc    net.PacketConn
	name  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (s *echoServer) start() {
	s.wg.Go(s.acceptLoop)
	s.wg.Go(s.udpLoop)
}

func (s *echoServer) close() {
	s.ln.Close()
	s.pc.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.tcpEcho(c) })
	}
}

func (s *echoServer) tcpEcho(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, s.name+":"+line); err != nil {
			return
		}
	}
}

func (s *echoServer) udpLoop() {
	pc, name := s.pc, s.name
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
	}
}

// tcpConn is a client connection and the backend that answered it.
type tcpConn struct {
	c       net.Conn
	r       *bufio.Reader
	backend string
}

// roundTrip sends one line and returns the answering backend's name.
func (tc *tcpConn) roundTrip(msg string) (string, error) {
	tc.c.SetDeadline(time.Now().Add(ioWait))
	if _, err := io.WriteString(tc.c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := tc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, rest, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !ok || rest != msg {
		return "", fmt.Errorf("bad echo %q for %q", line, msg)
	}
	return name, nil
}

func (l *lab) dialTCP(vip netip.Addr, from net.Addr, wait time.Duration) (*tcpConn, error) {
	c, err := l.net.Client.Dial("tcp", from, netip.AddrPortFrom(vip, tcpPort).String(), wait)
	if err != nil {
		return nil, err
	}
	tc := &tcpConn{c: c, r: bufio.NewReader(c)}
	if tc.backend, err = tc.roundTrip("hello"); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// udpFlow is a connected client UDP socket: one flow.
type udpFlow struct {
	c       net.Conn
	backend string
}

func (f *udpFlow) roundTrip(msg string) (string, error) {
	return f.roundTripWait(msg, ioWait)
}

func (f *udpFlow) roundTripWait(msg string, wait time.Duration) (string, error) {
	f.c.SetDeadline(time.Now().Add(wait))
	if _, err := f.c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := f.c.Read(buf)
	if err != nil {
		return "", err
	}
	name, rest, ok := strings.Cut(string(buf[:n]), ":")
	if !ok || rest != msg {
		return "", fmt.Errorf("bad echo %q for %q", buf[:n], msg)
	}
	return name, nil
}

func (l *lab) dialUDP(vip netip.Addr, from net.Addr, wait time.Duration) (*udpFlow, error) {
	c, err := l.net.Client.Dial("udp", from, netip.AddrPortFrom(vip, udpPort).String(), wait)
	if err != nil {
		return nil, err
	}
	f := &udpFlow{c: c}
	if f.backend, err = f.roundTripWait("hello", wait); err != nil {
		c.Close()
		return nil, err
	}
	return f, nil
}

// checkSpread asserts that counts follow the weights within tol (share).
func checkSpread(t *testing.T, what string, counts map[string]int, weights []uint32, tol float64) {
	t.Helper()
	var total int
	var wsum uint32
	for _, c := range counts {
		total += c
	}
	for _, w := range weights {
		wsum += w
	}
	for i, w := range weights {
		name := fmt.Sprintf("b%d", i+1)
		got := float64(counts[name]) / float64(total)
		want := float64(w) / float64(wsum)
		if got < want-tol || got > want+tol {
			t.Errorf("%s: %s got %.3f of %d flows, want %.3f ± %.2f (%v)", what, name, got, total, want, tol, counts)
		}
	}
}

func TestE2E_XDP_BalancesDSR(t *testing.T) {
	weights := []uint32{1, 2, 3}
	l := newLab(t, weights)

	const flows = 240 // per protocol; each is a real connection or socket
	var tcps []*tcpConn
	var udps []*udpFlow
	t.Cleanup(func() {
		for _, c := range tcps {
			c.c.Close()
		}
		for _, f := range udps {
			f.c.Close()
		}
	})
	tcpCount, udpCount := map[string]int{}, map[string]int{}
	for i := range flows {
		tc, err := l.dialTCP(lbnet.VIP4, nil, ioWait)
		if err != nil {
			t.Fatalf("tcp flow %d: %v", i, err)
		}
		tcps = append(tcps, tc)
		tcpCount[tc.backend]++
		f, err := l.dialUDP(lbnet.VIP4, nil, ioWait)
		if err != nil {
			t.Fatalf("udp flow %d: %v", i, err)
		}
		udps = append(udps, f)
		udpCount[f.backend]++
	}
	checkSpread(t, "tcp", tcpCount, weights, 0.1)
	checkSpread(t, "udp", udpCount, weights, 0.1)

	t.Run("ipv6", func(t *testing.T) {
		count := map[string]int{}
		for i := range 30 {
			tc, err := l.dialTCP(lbnet.VIP6, nil, ioWait)
			if err != nil {
				t.Fatalf("tcp6 flow %d: %v", i, err)
			}
			count[tc.backend]++
			tc.c.Close()
			f, err := l.dialUDP(lbnet.VIP6, nil, ioWait)
			if err != nil {
				t.Fatalf("udp6 flow %d: %v", i, err)
			}
			count[f.backend]++
			f.c.Close()
		}
		if len(count) < 2 {
			t.Errorf("ipv6 flows all on %v", count)
		}
	})

	// Flows keep their backend on later packets.
	for i, tc := range tcps[:40] {
		if got, err := tc.roundTrip(fmt.Sprintf("again-%d", i)); err != nil || got != tc.backend {
			t.Fatalf("tcp flow %d: answered by %q (%v), want %s", i, got, err, tc.backend)
		}
	}

	t.Run("remove backend", func(t *testing.T) {
		// b1 leaves: only its flows move.
		if err := l.prog.Apply(l.state(func(i int) bool { return i != 0 }, nil)); err != nil {
			t.Fatal(err)
		}
		movedUDP := 0
		for i, f := range udps {
			got, err := f.roundTrip(fmt.Sprintf("after-%d", i))
			if err != nil {
				t.Fatalf("udp flow %d (was %s): %v", i, f.backend, err)
			}
			switch {
			case f.backend == "b1":
				movedUDP++
				if got == "b1" {
					t.Fatalf("udp flow %d still reaches the removed backend", i)
				}
			case got != f.backend:
				t.Fatalf("udp flow %d moved from %s to %s, though %s stayed", i, f.backend, got, f.backend)
			}
		}
		if movedUDP == 0 {
			t.Fatal("no udp flow was on b1: the test proves nothing")
		}
		for i, tc := range tcps {
			if tc.backend == "b1" {
				continue // its packets now reach a backend without the connection
			}
			if got, err := tc.roundTrip(fmt.Sprintf("after-%d", i)); err != nil || got != tc.backend {
				t.Fatalf("tcp flow %d on %s: answered by %q (%v) after b1 left", i, tc.backend, got, err)
			}
		}
		// New flows avoid b1 and follow the remaining weights 2:3.
		count := map[string]int{}
		for i := range 60 {
			f, err := l.dialUDP(lbnet.VIP4, nil, ioWait)
			if err != nil {
				t.Fatalf("new udp flow %d: %v", i, err)
			}
			count[f.backend]++
			f.c.Close()
		}
		if count["b1"] != 0 {
			t.Fatalf("new flows reached the removed backend: %v", count)
		}
		// Back to all three for the next subtest.
		if err := l.prog.Apply(l.state(nil, nil)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("resolve next hop", func(t *testing.T) {
		for _, b := range l.net.Backends {
			for _, a := range []netip.Addr{b.Addr4, b.Addr6} {
				var mac net.HardwareAddr
				err := l.net.LB.Run(func() (err error) {
					mac, err = bpf.ResolveNextHop(a, 2*time.Second)
					return err
				})
				if err != nil || mac.String() != b.MAC.String() {
					t.Errorf("ResolveNextHop(%s) = %s, %v; want %s", a, mac, err, b.MAC)
				}
			}
		}
	})

	t.Run("deny", func(t *testing.T) {
		deny := []netip.Prefix{
			netip.PrefixFrom(lbnet.DeniedAddr4, 32),
			netip.PrefixFrom(lbnet.DeniedAddr6, 128),
		}
		before, err := l.prog.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.prog.Apply(l.state(nil, deny)); err != nil {
			t.Fatal(err)
		}
		for _, from := range []netip.Addr{lbnet.DeniedAddr4, lbnet.DeniedAddr6} {
			vip := lbnet.VIP4
			if from.Is6() {
				vip = lbnet.VIP6
			}
			if tc, err := l.dialTCP(vip, &net.TCPAddr{IP: from.AsSlice()}, deniedWait); err == nil {
				tc.c.Close()
				t.Errorf("tcp from denied %s reached %s", from, tc.backend)
			}
			if f, err := l.dialUDP(vip, &net.UDPAddr{IP: from.AsSlice()}, deniedWait); err == nil {
				f.c.Close()
				t.Errorf("udp from denied %s reached %s", from, f.backend)
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("udp from denied %s: %v, want a timeout", from, err)
			}
		}
		// Others are unaffected.
		if _, err := l.dialUDP(lbnet.VIP4, nil, ioWait); err != nil {
			t.Fatalf("allowed client after deny: %v", err)
		}
		after, err := l.prog.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if d := after.Reasons[bpf.ReasonDeny].Packets - before.Reasons[bpf.ReasonDeny].Packets; d == 0 {
			t.Error("deny counter did not move")
		}
	})

	st, err := l.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: tx %d packets, pass %d, drop %d", st.Action(bpf.ActionTX).Packets, st.Action(bpf.ActionPass).Packets, st.Action(bpf.ActionDrop).Packets)
	if st.Reasons[bpf.ReasonForward].Packets < 4*flows {
		t.Errorf("forwarded %d packets, want at least %d", st.Reasons[bpf.ReasonForward].Packets, 4*flows)
	}
}
