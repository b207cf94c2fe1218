package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bpf/lbnet"
	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/quiclb"
)

// The ECMP tests run N gateway processes, one per network namespace,
// behind a router whose multipath route spreads a VIP over them by an L4
// hash. The instances never talk to each other: they agree because they
// compute the same tables from the same config file.

// ecmpMetricsAddr is where every instance serves its metrics, inside its
// own namespace.
const ecmpMetricsAddr = "127.0.0.1:9090"

// requireNetns skips (or, with EG_REQUIRE_PRIVILEGED=1, fails) a test
// that needs root, iproute2 and network namespaces.
func requireNetns(t *testing.T, why any) {
	t.Helper()
	if os.Getenv("EG_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("privileged test cannot run, and EG_REQUIRE_PRIVILEGED=1: %v", why)
	}
	t.Skipf("needs root, iproute2 and network namespaces (EG_REQUIRE_PRIVILEGED=1 makes this a failure): %v", why)
}

// canNetns skips (or fails) unless this is root with iproute2.
func canNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		requireNetns(t, "not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		requireNetns(t, err)
	}
}

// newECMP builds the topology, removed when the test ends.
func newECMP(t *testing.T, instances, backends int) *lbnet.ECMP {
	t.Helper()
	canNetns(t)
	e, err := lbnet.BuildECMP(instances, backends)
	if err != nil {
		requireNetns(t, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	return e
}

// ecmpInstance is one gateway process in its namespace.
type ecmpInstance struct {
	ns   lbnet.NS
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed once the process has been waited for
}

// startInstances runs bin on cfgPath in every instance namespace (ip
// netns exec replaces itself with the gateway: the PID is the
// gateway's), with env(instance) added to the environment, and waits
// until each answers /readyz.
func startInstances(t *testing.T, e *lbnet.ECMP, bin, cfgPath string, env func(lbnet.Instance) []string) []*ecmpInstance {
	t.Helper()
	var out []*ecmpInstance
	for _, in := range e.Instances {
		g := &ecmpInstance{ns: in.NS, logs: &syncBuffer{}, done: make(chan struct{})}
		g.cmd = exec.Command("ip", "netns", "exec", in.NS.Name, bin, cfgPath)
		g.cmd.Env = append(cleanEnv(), "EG_LOG_FORMAT=text")
		if env != nil {
			g.cmd.Env = append(g.cmd.Env, env(in)...)
		}
		g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
		if err := g.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { g.cmd.Wait(); close(g.done) }()
		t.Cleanup(func() {
			g.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.done:
			case <-time.After(10 * time.Second):
				g.cmd.Process.Kill()
				<-g.done
			}
			if t.Failed() {
				t.Logf("%s logs:\n%s", g.ns.Name, g.logs.String())
			}
		})
		out = append(out, g)
	}
	for _, g := range out {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if code, _, err := g.get("/readyz"); err == nil && code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never ready; logs:\n%s", g.ns.Name, g.logs.String())
			}
			select {
			case <-g.done:
				t.Fatalf("%s exited: %v; logs:\n%s", g.ns.Name, g.cmd.ProcessState, g.logs.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return out
}

// kill SIGKILLs the instance and waits for it to be gone.
func (g *ecmpInstance) kill(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.done
	if ws, ok := g.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s: %v, want killed by SIGKILL", g.ns.Name, g.cmd.ProcessState)
	}
	// The PID was the gateway's (ip netns exec execs it): nothing in the
	// namespace answers any more.
	if _, _, err := g.get("/readyz"); err == nil {
		t.Fatalf("%s: still answering after SIGKILL", g.ns.Name)
	}
}

// get fetches path from the instance's metrics listener, dialled inside
// its namespace.
func (g *ecmpInstance) get(path string) (int, string, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return g.ns.Dial(network, nil, addr, 2*time.Second)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Get("http://" + ecmpMetricsAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric reads one series (its name and labels exactly) from the
// instance's metrics.
func (g *ecmpInstance) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body, err := g.get("/metrics")
	if err != nil {
		t.Fatalf("%s metrics: %v", g.ns.Name, err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no %s in the metrics", g.ns.Name, series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// nextHop asks the router which instance its multipath hash sends a
// client flow to (the same hash the forwarding path uses).
func nextHop(t *testing.T, e *lbnet.ECMP, proto string, sport, dport uint16) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", e.Router.Name, "route", "get", lbnet.VIP4.String(),
		"from", lbnet.ECMPClientAddr4.String(), "iif", "eth1", "ipproto", proto,
		"sport", strconv.Itoa(int(sport)), "dport", strconv.Itoa(int(dport))).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get: %v %s", err, out)
	}
	for i, in := range e.Instances {
		if strings.Contains(string(out), "via "+in.Addr4.String()+" ") {
			return i
		}
	}
	t.Fatalf("ip route get: no instance in %q", out)
	return -1
}

// quicBackend runs a quic-go server on addr inside ns that answers every
// stream with its name and the connection's peer address as it sees it
// ("b1@10.200.0.2:41000"); gen, if set, mints its Connection IDs; spp: it
// reads the SPP backhaul of the instances (the segment's prefix).
func quicBackend(t *testing.T, ns lbnet.NS, addr netip.AddrPort, roots *x509.CertPool, name string, gen quic.ConnectionIDGenerator, spp bool) {
	t.Helper()
	certPEM, keyPEM, err := testcert.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(certPEM)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := ns.ListenPacket("udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var conn net.PacketConn = pc
	if spp {
		conn = quiclb.NewSPPConn(pc.(*net.UDPConn), []netip.Prefix{netip.PrefixFrom(lbnet.ECMPRouterAddr4, 24).Masked()})
	}
	tr := &quic.Transport{Conn: conn, ConnectionIDGenerator: gen}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"eg-echo"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					io.Copy(io.Discard, s)
					io.WriteString(s, name+"@"+c.RemoteAddr().String())
					s.Close()
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); tr.Close(); pc.Close(); wg.Wait() })
}

// quicClient is one client connection on its own socket (its own port:
// its own ECMP hash).
type quicClient struct {
	tr   *quic.Transport
	conn *quic.Conn
	port uint16
}

// ask opens a stream and returns the backend's name and the address it
// sees the connection from.
func (c *quicClient) ask(timeout time.Duration) (name string, peer netip.AddrPort, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return "", peer, err
	}
	s.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(s, "who?"); err != nil {
		return "", peer, err
	}
	s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		return "", peer, err
	}
	name, addr, _ := strings.Cut(string(b), "@")
	if peer, err = netip.ParseAddrPort(addr); err != nil {
		return "", peer, fmt.Errorf("answer %q: %w", b, err)
	}
	return name, peer, nil
}

// TestECMP_QUICPassthroughSurvivesAnInstance: three gateway processes run
// the same [passthrough] config behind an ECMP router; 30 QUIC
// connections spread over them. While every connection opens a stream
// after another, one instance is SIGKILLed and withdrawn from the route,
// as a routing daemon would; every connection it carried moves to a
// survivor and keeps its backend:
//
//   - on a QUIC-LB backend, because its Connection ID names the server
//     and decodes the same on every instance;
//   - on a random-CID backend, because the survivor has no state for it
//     and falls back to the Maglev hash of the 4-tuple, which every
//     instance computes over the same pool from the same file.
//
// With backhaul = "per_flow" (the default) the backend then sees the
// connection from a new address, the survivor's upstream socket: a
// rebinding quic-go validates (PATH_CHALLENGE through the survivor)
// before it moves the path. With backhaul = "spp" it keeps seeing the
// client's address (quiclb.SPPConn) and answers through the survivor,
// the load balancer that last delivered for that client. Either way no
// stream may fail and every answer comes from the connection's backend.
func TestECMP_QUICPassthroughSurvivesAnInstance(t *testing.T) {
	canNetns(t)
	for _, backhaul := range []string{"per_flow", "spp"} {
		t.Run(backhaul, func(t *testing.T) { testECMPQUIC(t, backhaul) })
	}
}

func testECMPQUIC(t *testing.T, backhaul string) {
	e := newECMP(t, 3, 4)
	if err := e.LocalVIP(); err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	roots := x509.NewCertPool()
	key := []byte("0123456789abcdef")
	qcfg := quiclb.Config{ID: 2, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: key}
	const port = 4433
	var servers, pool []string
	quiclbNames := map[string]bool{}
	for i, b := range e.Backends {
		name := fmt.Sprintf("b%d", i+1)
		addr := netip.AddrPortFrom(b.Addr4, port)
		var gen quic.ConnectionIDGenerator
		if i < 2 { // b1, b2 mint QUIC-LB Connection IDs; b3, b4 random ones
			sid, _ := quiclb.NewServerID([]byte{0, byte(i + 1)})
			g, err := quiclb.NewGenerator(qcfg, sid)
			if err != nil {
				t.Fatal(err)
			}
			gen = g
			quiclbNames[name] = true
			servers = append(servers, fmt.Sprintf("{ address = %q, server_id = \"%04x\" }", addr, i+1))
		}
		quicBackend(t, b.NS, addr, roots, name, gen, backhaul == "spp")
		pool = append(pool, fmt.Sprintf("{ address = %q, protocol = \"udp\" }", addr))
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "lb.key")
	testcert.WriteFile(t, keyPath, key, 0o600)
	cfgPath := filepath.Join(dir, "eg.toml")
	vip := netip.AddrPortFrom(lbnet.VIP4, port)
	extra := ""
	if backhaul != "per_flow" {
		extra = fmt.Sprintf("backhaul = %q\n", backhaul)
	}
	testcert.WriteFile(t, cfgPath, []byte(fmt.Sprintf(`
[observability]
metrics_bind = %q

[[pools]]
name = "quic"
algorithm = "maglev"
backends = [%s]

[[passthrough.listeners]]
name = "edge"
bind_addr = %q
pool = "quic"
%s
[[passthrough.listeners.quic_lb]]
config_id = 2
server_id_len = 2
nonce_len = 14
key_path = %q
servers = [%s]
`, ecmpMetricsAddr, strings.Join(pool, ", "), vip, extra, keyPath, strings.Join(servers, ", "))), 0o600)
	gws := startInstances(t, e, bin, cfgPath, nil)
	var hashes []float64
	for _, g := range gws {
		hashes = append(hashes, g.metric(t, `expressgateway_pool_maglev_table_hash{pool="quic"}`))
	}
	if hashes[0] == 0 || hashes[1] != hashes[0] || hashes[2] != hashes[0] {
		t.Fatalf("pool table fingerprints %v, want one non-zero value", hashes)
	}

	const conns = 30
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"eg-echo"}}
	var clients []*quicClient
	t.Cleanup(func() {
		for _, c := range clients {
			c.conn.CloseWithError(0, "")
			c.tr.Close()
		}
	})
	backendOf := make([]string, conns)
	firstPeer := make([]netip.AddrPort, conns) // as the backend saw each connection before the kill
	for i := range conns {
		pc, err := e.Client.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		c := &quicClient{tr: &quic.Transport{Conn: pc.(*net.UDPConn)}, port: uint16(pc.LocalAddr().(*net.UDPAddr).Port)}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.conn, err = c.tr.Dial(ctx, net.UDPAddrFromAddrPort(vip), tlsConf, nil)
		cancel()
		if err != nil {
			c.tr.Close()
			t.Fatalf("connection %d: %v", i, err)
		}
		clients = append(clients, c)
		if backendOf[i], firstPeer[i], err = c.ask(5 * time.Second); err != nil {
			t.Fatalf("connection %d, first stream: %v", i, err)
		}
		// The certificate the client verified is the backend's: the
		// stream's answer and the handshake agree.
		if cn := c.conn.ConnectionState().TLS.PeerCertificates[0].Subject.CommonName; cn != backendOf[i] {
			t.Fatalf("connection %d: certificate %q, answer %q", i, cn, backendOf[i])
		}
	}

	// Where each connection went: the router's hash, checked against the
	// flow gauge of every instance.
	via := make([]int, conns)
	perInstance := make([]int, len(gws))
	kinds := make([][2]int, len(gws)) // [QUIC-LB, random] connections per instance
	for i, c := range clients {
		via[i] = nextHop(t, e, "udp", c.port, port)
		perInstance[via[i]]++
		if quiclbNames[backendOf[i]] {
			kinds[via[i]][0]++
		} else {
			kinds[via[i]][1]++
		}
	}
	carrying := 0
	for i, g := range gws {
		flows := g.metric(t, `expressgateway_passthrough_flows{listener="edge"}`)
		if int(flows) != perInstance[i] {
			t.Errorf("instance %d: %v flows, the router sent it %d connections", i+1, flows, perInstance[i])
		}
		if flows > 0 {
			carrying++
		}
	}
	t.Logf("connections per instance %v, [QUIC-LB random] per instance %v, backends %v", perInstance, kinds, backendOf)
	if carrying < 2 {
		t.Fatalf("ECMP put every connection on one instance: %v", perInstance)
	}
	// The victim carries connections of both kinds (the most such), so
	// that both reasons to survive are tested.
	victim := -1
	for i, k := range kinds {
		if k[0] > 0 && k[1] > 0 && (victim < 0 || perInstance[i] > perInstance[victim]) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("no instance carried both QUIC-LB and random-CID connections: %v", kinds)
	}
	var survivors []int
	for i := range gws {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	before := make([]map[string]float64, len(gws))
	for _, i := range survivors {
		before[i] = map[string]float64{}
		for _, r := range []string{"cid", "fallback"} {
			before[i][r] = gws[i].metric(t, `expressgateway_passthrough_datagrams_total{listener="edge",route="`+r+`"}`)
		}
	}

	// Load: every connection opens a stream every 20 ms until told to
	// stop (bounded in streams and in time); a connection fails at its
	// first failed stream or answer from another backend.
	const maxStreams = 300
	stop := make(chan struct{})
	var mu sync.Mutex
	killed := false
	failed := make([]error, conns)
	afterKill := make([]int, conns)           // streams that succeeded after the kill
	lastPeer := make([]netip.AddrPort, conns) // as the backend saw it at the last stream
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for range maxStreams {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				name, peer, err := c.ask(10 * time.Second)
				if err == nil && name != backendOf[i] {
					err = fmt.Errorf("answered by %s, was %s", name, backendOf[i])
				}
				mu.Lock()
				if err != nil {
					failed[i] = err
					mu.Unlock()
					return
				}
				if killed {
					afterKill[i]++
				}
				lastPeer[i] = peer
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	killed = true
	mu.Unlock()
	gws[victim].kill(t)
	if err := e.Route(survivors...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	survived := [2]int{} // [QUIC-LB, random] of the victim's connections
	moved := 0           // survivors' connections the shrunk route moved to the other survivor
	for i, c := range clients {
		now := nextHop(t, e, "udp", c.port, port)
		if via[i] != victim && now != via[i] {
			moved++
		}
		kind := "random-CID"
		if quiclbNames[backendOf[i]] {
			kind = "QUIC-LB"
		}
		// What the backend must see: per_flow, the upstream socket of the
		// instance the connection goes through (a new one once it moved);
		// spp, the client itself.
		peerOK := func(p netip.AddrPort, instance int) bool {
			if backhaul == "spp" {
				return p == netip.AddrPortFrom(lbnet.ECMPClientAddr4, c.port)
			}
			return p.Addr() == e.Instances[instance].Addr4
		}
		if !peerOK(firstPeer[i], via[i]) || afterKill[i] > 0 && !peerOK(lastPeer[i], now) {
			t.Errorf("connection %d (via instance %d, now %d): the backend saw it from %s, then %s", i, via[i]+1, now+1, firstPeer[i], lastPeer[i])
		}
		switch {
		case failed[i] != nil || afterKill[i] == 0:
			t.Errorf("connection %d (%s on %s, via instance %d, now %d): %d streams after the kill, then: %v", i, kind, backendOf[i], via[i]+1, now+1, afterKill[i], failed[i])
		case via[i] == victim && kind == "QUIC-LB":
			survived[0]++
		case via[i] == victim:
			survived[1]++
		}
	}
	t.Logf("backhaul %s: killed instance %d: %d of %d QUIC-LB and %d of %d random-CID connections it carried survived; %d connections on survivors were moved between survivors by the route change",
		backhaul, victim+1, survived[0], kinds[victim][0], survived[1], kinds[victim][1], moved)
	// The survivors routed the victim's connections statelessly: QUIC-LB
	// by Connection ID, random-CID ones by the 4-tuple hash.
	var cid, fallback float64
	for _, i := range survivors {
		cid += gws[i].metric(t, `expressgateway_passthrough_datagrams_total{listener="edge",route="cid"}`) - before[i]["cid"]
		fallback += gws[i].metric(t, `expressgateway_passthrough_datagrams_total{listener="edge",route="fallback"}`) - before[i]["fallback"]
	}
	if cid == 0 || fallback == 0 {
		t.Errorf("survivors routed %v datagrams by Connection ID and %v by the 4-tuple hash after the kill, want both", cid, fallback)
	}
}

// tcpEcho answers each line on ln with "<name>:<line>", until the test
// ends.
func tcpEcho(t *testing.T, ln net.Listener, name string) {
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
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// echoConn is one client TCP connection through the VIP.
type echoConn struct {
	c       net.Conn
	r       *bufio.Reader
	port    uint16
	backend string
}

// round sends line and returns the backend that echoed it.
func (c *echoConn) round(line string, timeout time.Duration) (string, error) {
	c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, rest, _ := strings.Cut(got, ":")
	if rest != line+"\n" {
		return "", fmt.Errorf("echo %q for %q", got, line)
	}
	return name, nil
}

// TestECMP_XDPAgreesAcrossInstances: three gateway processes run the same
// XDP-only config (a TCP service over three backends, direct server
// return) behind an ECMP router. Their Maglev tables are identical (the
// fingerprint gauge is equal on all three). Under load on 30 established
// connections, one instance is SIGKILLed (its XDP program goes with its
// process) and withdrawn from the route: its connections reach a
// survivor mid-flow, where no conntrack entry knows them, and the
// survivor's table sends each to the backend it was on, so none breaks;
// the survivors' connections never change backend either, even those
// the shrunk route moves to the other survivor.
func TestECMP_XDPAgreesAcrossInstances(t *testing.T) {
	e := newECMP(t, 3, 3)
	const port = 7000
	var pool []string
	for i, b := range e.Backends {
		if !e.TunnelDevices {
			d, err := bpf.LoadDecap(b.Addr4, b.Addr6)
			if err != nil {
				if bpf.IsUnavailable(err) {
					requireNetns(t, err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if err := b.NS.Run(func() error { return d.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
				t.Fatal(err)
			}
		}
		ln, err := b.NS.Listen("tcp", netip.AddrPortFrom(lbnet.VIP4, port).String())
		if err != nil {
			t.Fatal(err)
		}
		tcpEcho(t, ln, fmt.Sprintf("b%d", i+1))
		pool = append(pool, fmt.Sprintf("{ address = %q }", netip.AddrPortFrom(b.Addr4, port)))
	}
	bin := buildBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "eg.toml")
	// The one per-host setting, the tunnel source (the instance's own
	// address), comes from the environment: the file is the same. A
	// config needs a listener: a loopback one, off the data path.
	testcert.WriteFile(t, cfgPath, []byte(fmt.Sprintf(`
[observability]
metrics_bind = %q

[[listeners]]
name = "local"
address = "127.0.0.1:8081"
protocol = "h1"
[[listeners.routes]]
direct_response = { status = 200, body = "ok" }

[runtime]
xdp_enabled = true
xdp_interface = %q
xdp_mode = "generic"

[[xdp.services]]
name = "echo"
vip = %q
port = %d
protocol = "tcp"
backends = [%s]
`, ecmpMetricsAddr, lbnet.Ifname, lbnet.VIP4, port, strings.Join(pool, ", "))), 0o600)
	gws := startInstances(t, e, bin, cfgPath, func(in lbnet.Instance) []string {
		return []string{"EG_XDP__SOURCE_V4=" + in.Addr4.String()}
	})
	service := fmt.Sprintf(`expressgateway_xdp_maglev_table_hash{service="tcp/%s:%d"}`, lbnet.VIP4, port)
	var hashes []float64
	for _, g := range gws {
		if g.metric(t, "expressgateway_xdp_attached") != 1 {
			requireNetns(t, g.ns.Name+": xdp did not attach:\n"+g.logs.String())
		}
		hashes = append(hashes, g.metric(t, service))
	}
	if hashes[0] == 0 || hashes[1] != hashes[0] || hashes[2] != hashes[0] {
		t.Fatalf("table fingerprints %v, want one non-zero value", hashes)
	}

	const conns = 30
	var clients []*echoConn
	t.Cleanup(func() {
		for _, c := range clients {
			c.c.Close()
		}
	})
	perInstance := make([]int, len(gws))
	via := make([]int, conns)
	for i := range conns {
		c, err := e.Client.Dial("tcp", nil, netip.AddrPortFrom(lbnet.VIP4, port).String(), 3*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		ec := &echoConn{c: c, r: bufio.NewReader(c), port: uint16(c.LocalAddr().(*net.TCPAddr).Port)}
		clients = append(clients, ec)
		if ec.backend, err = ec.round("hello", 3*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		via[i] = nextHop(t, e, "tcp", ec.port, port)
		perInstance[via[i]]++
	}
	carrying := 0
	for i, g := range gws {
		tx := g.metric(t, `expressgateway_xdp_packets_total{action="tx"}`)
		if tx > 0 {
			carrying++
		}
		if (tx > 0) != (perInstance[i] > 0) {
			t.Errorf("instance %d: the router sent it %d connections, its XDP forwarded %v packets", i+1, perInstance[i], tx)
		}
	}
	t.Logf("connections per instance %v", perInstance)
	if carrying < 2 {
		t.Fatalf("ECMP put every connection on one instance: %v", perInstance)
	}
	victim := 0
	for i := range perInstance {
		if perInstance[i] > perInstance[victim] {
			victim = i
		}
	}
	var survivors []int
	for i := range gws {
		if i != victim {
			survivors = append(survivors, i)
		}
	}

	// Load: every connection echoes a line every 10 ms, until told to
	// stop (bounded in rounds and in time); a connection breaks at its
	// first failed round or answer from another backend.
	const maxRounds = 500
	stop := make(chan struct{})
	var killedAt time.Time
	var mu sync.Mutex
	broken := make([]error, conns)
	afterKill := make([]int, conns) // rounds completed after the kill
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for r := range maxRounds {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				be, err := c.round(fmt.Sprintf("round %d", r), 5*time.Second)
				if err == nil && be != c.backend {
					err = fmt.Errorf("answered by %s, was %s", be, c.backend)
				}
				mu.Lock()
				if err != nil {
					broken[i] = err
					mu.Unlock()
					return
				}
				if !killedAt.IsZero() {
					afterKill[i]++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	gws[victim].kill(t)
	if err := e.Route(survivors...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	nBroken, movedSurvivors := 0, 0
	for i, c := range clients {
		now := nextHop(t, e, "tcp", c.port, port)
		if via[i] != victim && now != via[i] {
			movedSurvivors++
		}
		if broken[i] != nil || afterKill[i] == 0 {
			nBroken++
			t.Errorf("connection %d (on %s, via instance %d, now %d): broken after %d rounds past the kill: %v", i, c.backend, via[i]+1, now+1, afterKill[i], broken[i])
		}
	}
	t.Logf("killed instance %d (%d of %d connections): %d of %d connections broken (%.3f); %d survivors' connections moved between survivors by the route change",
		victim+1, perInstance[victim], conns, nBroken, conns, float64(nBroken)/conns, movedSurvivors)
	for _, i := range survivors {
		if h := gws[i].metric(t, service); h != hashes[0] {
			t.Errorf("instance %d: fingerprint %v after the kill, was %v", i+1, h, hashes[0])
		}
	}
}
