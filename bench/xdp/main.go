// Command xdp measures the XDP L4 fast path in network namespaces: UDP
// packets per second and TCP connections per second from a client, through
// the balancer (XDP generic mode on a veth, IP-in-IP, direct server return)
// to three backends; and, for comparison, TCP connections per second
// and UDP packets per second through the userspace L4 relays (stages/l4
// RelayTCP and UDPRelay) in the same namespaces, with the ratios. Every
// phase is bounded in time and count. Needs root.
//
//	go run ./bench/xdp -duration 5s -workers 8
//
// Numbers on veth in generic mode measure the kernel's skb path plus our
// program, not a NIC driver's native XDP.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bpf/lbnet"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/l4"
	"github.com/expressgateway/expressgateway/stages/route"
)

const (
	tcpPort   = 7000
	udpPort   = 7001
	relayPort = 7100
	ioWait    = 2 * time.Second
)

type config struct {
	duration   time.Duration
	workers    int
	maxPackets int64
	maxConns   int64
	payload    int
	relay      bool
}

func main() {
	var c config
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of each phase")
	flag.IntVar(&c.workers, "workers", 8, "concurrent senders / connectors")
	flag.Int64Var(&c.maxPackets, "max-packets", 20_000_000, "cap on UDP packets sent")
	flag.Int64Var(&c.maxConns, "max-conns", 200_000, "cap on TCP connections per phase")
	flag.IntVar(&c.payload, "payload", 64, "UDP payload bytes")
	flag.BoolVar(&c.relay, "relay", true, "also measure the userspace L4 relay")
	relayServe := flag.String("relay-serve", "", "internal: run the relay child on this address")
	relayBackends := flag.String("relay-backends", "", "internal: the relay child's backends")
	relayUDPBackends := flag.String("relay-udp-backends", "", "internal: the relay child's UDP backends")
	flag.Parse()
	if *relayServe != "" {
		if err := serveRelay(*relayServe, *relayBackends, *relayUDPBackends); err != nil {
			fmt.Fprintln(os.Stderr, "xdp bench relay:", err)
			os.Exit(1)
		}
		return
	}
	if c.workers < 1 || c.workers > 256 || c.duration <= 0 || c.duration > 5*time.Minute || c.payload < 1 || c.payload > 1400 {
		fmt.Fprintln(os.Stderr, "xdp bench: workers 1..256, duration (0, 5m], payload 1..1400")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "xdp bench:", err)
		os.Exit(1)
	}
}

func run(c config) (err error) {
	n, err := lbnet.Build(3)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	for _, kv := range [][2]string{
		{"net/ipv4/ip_local_port_range", "1024 65000"},
		{"net/ipv4/tcp_tw_reuse", "1"},
	} {
		if err := n.Client.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}

	prog, err := bpf.Load(bpf.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, prog.Close()) }()
	if err := n.LB.Run(func() error { return prog.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
		return err
	}
	var backends []bpf.Backend
	for i, b := range n.Backends {
		if !n.TunnelDevices {
			d, err := bpf.LoadDecap(b.Addr4)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := b.NS.Run(func() error { return d.Attach(lbnet.Ifname, bpf.ModeGeneric) }); err != nil {
				return err
			}
		}
		backends = append(backends, bpf.Backend{Name: fmt.Sprintf("b%d", i+1), Addr: b.Addr4, Weight: 1, MAC: b.MAC})
	}
	err = prog.Apply(bpf.State{
		Services: []bpf.Service{
			{VIP: lbnet.VIP4, Port: tcpPort, Proto: bpf.TCP, Backends: backends},
			{VIP: lbnet.VIP4, Port: udpPort, Proto: bpf.UDP, Backends: backends},
		},
		SourceV4: lbnet.LBAddr4,
	})
	if err != nil {
		return err
	}

	var received atomic.Int64
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.close()
		}
	}()
	for _, b := range n.Backends {
		s, err := startServer(b.NS, &received)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}

	fmt.Printf("xdp bench: %s, %d workers, %s per phase, decap by %s\n",
		n.Prefix, c.workers, c.duration, map[bool]string{true: "ipip devices", false: "bpf.Decap (no ipip in kernel)"}[n.TunnelDevices])

	// Phase 1: UDP packets per second through XDP.
	before, err := prog.Stats()
	if err != nil {
		return err
	}
	recvBefore := received.Load()
	arrBefore, err := udpArrived(n)
	if err != nil {
		return err
	}
	sent, elapsed, err := udpFlood(n.Client, netip.AddrPortFrom(lbnet.VIP4, udpPort), c)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // let the last packets land
	xdpDelivered := float64(received.Load()-recvBefore) / elapsed.Seconds()
	arrAfter, err := udpArrived(n)
	if err != nil {
		return err
	}
	xdpArrived := float64(arrAfter-arrBefore) / elapsed.Seconds()
	after, err := prog.Stats()
	if err != nil {
		return err
	}
	fwd := after.Reasons[bpf.ReasonForward].Packets - before.Reasons[bpf.ReasonForward].Packets
	secs := elapsed.Seconds()
	var rcvbuf int64
	for _, b := range n.Backends {
		v, err := udpRcvbufErrors(b.NS)
		if err != nil {
			return err
		}
		rcvbuf += v
	}
	fmt.Printf("xdp   udp: sent %.0f pkt/s, forwarded by XDP %.0f pkt/s, reached backends %.0f pkt/s, read by backend apps %.0f pkt/s (%d packets, %d-byte payload; %d dropped at full backend socket buffers)\n",
		float64(sent)/secs, float64(fwd)/secs, xdpArrived, xdpDelivered, sent, c.payload, rcvbuf)

	// Phase 2: TCP connections per second through XDP.
	vip := netip.AddrPortFrom(lbnet.VIP4, tcpPort).String()
	xdpCPS, err := connectLoop(n.Client, vip, c)
	if err != nil {
		return err
	}
	fmt.Printf("xdp   tcp: %.0f conn/s (connect, 1 echo, close)\n", xdpCPS)

	if !c.relay {
		return nil
	}
	// Phase 3: the same through the userspace TCP relay on the balancer.
	stop, err := startRelay(n)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stop()) }()
	relayCPS, err := connectLoop(n.Client, netip.AddrPortFrom(lbnet.LBAddr4, relayPort).String(), c)
	if err != nil {
		return err
	}
	fmt.Printf("relay tcp: %.0f conn/s (stages/l4 RelayTCP in a process in the balancer namespace, round robin)\n", relayCPS)

	// Phase 4: UDP packets per second through the userspace UDP relay.
	recvBefore = received.Load()
	if arrBefore, err = udpArrived(n); err != nil {
		return err
	}
	relaySent, relayElapsed, err := udpFlood(n.Client, netip.AddrPortFrom(lbnet.LBAddr4, relayPort), c)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	relayDelivered := float64(received.Load()-recvBefore) / relayElapsed.Seconds()
	if arrAfter, err = udpArrived(n); err != nil {
		return err
	}
	relayArrived := float64(arrAfter-arrBefore) / relayElapsed.Seconds()
	fmt.Printf("relay udp: sent %.0f pkt/s, reached backends %.0f pkt/s, read by backend apps %.0f pkt/s (stages/l4 UDPRelay, %d flows, %d packets)\n",
		float64(relaySent)/relayElapsed.Seconds(), relayArrived, relayDelivered, c.workers, relaySent)
	if relayCPS > 0 {
		fmt.Printf("ratio tcp: xdp/relay = %.2f conn/s\n", xdpCPS/relayCPS)
	}
	if relayArrived > 0 && relayDelivered > 0 {
		fmt.Printf("ratio udp: xdp/relay = %.2f forwarded pkt/s (reached backends), %.2f read by backend apps\n",
			xdpArrived/relayArrived, xdpDelivered/relayDelivered)
	}
	return nil
}

// server is one backend's TCP echo (answer one line, then close: the
// backend keeps TIME_WAIT, not the client) and UDP sink.
type server struct {
	ln net.Listener
	pc net.PacketConn
	wg sync.WaitGroup
}

func startServer(ns lbnet.NS, received *atomic.Int64) (*server, error) {
	ln, err := ns.Listen("tcp4", fmt.Sprintf(":%d", tcpPort))
	if err != nil {
		return nil, err
	}
	pc, err := ns.ListenPacket("udp4", fmt.Sprintf(":%d", udpPort))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &server{ln: ln, pc: pc}
	s.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			received.Add(1)
		}
	})
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioWait))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, line)
				}
			})
		}
	})
	return s, nil
}

func (s *server) close() {
	s.ln.Close()
	s.pc.Close()
	s.wg.Wait()
}

// udpFlood sends from c.workers connected sockets (one flow each) until
// the duration or the packet cap is reached.
func udpFlood(client lbnet.NS, to netip.AddrPort, c config) (int64, time.Duration, error) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, c.workers)
	start := time.Now()
	deadline := start.Add(c.duration)
	for range c.workers {
		conn, err := client.Dial("udp4", nil, to.String(), ioWait)
		if err != nil {
			return 0, 0, err
		}
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, c.payload)
			buf = buf[:len(buf):len(buf)]
			for i := 0; ; i++ {
				if i%256 == 0 && (time.Now().After(deadline) || sent.Load() >= c.maxPackets) {
					return
				}
				if _, err := conn.Write(buf); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						errc <- err
						return
					}
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	close(errc)
	return sent.Load(), time.Since(start), <-errc
}

// connectLoop runs c.workers loops of connect, one echo, close, and
// returns completed connections per second. A failed connection counts as
// an error; more than 1% errors fail the run.
func connectLoop(client lbnet.NS, addr string, c config) (float64, error) {
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(c.duration)
	for range c.workers {
		// Each worker is one OS thread inside the client namespace, so
		// its dials need no namespace switch.
		wg.Go(func() {
			client.Run(func() error {
				for time.Now().Before(deadline) && done.Load()+failed.Load() < c.maxConns {
					if err := echoOnce(addr); err != nil {
						failed.Add(1)
						continue
					}
					done.Add(1)
				}
				return nil
			})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f*100 > done.Load() {
		return 0, fmt.Errorf("%s: %d of %d connections failed", addr, f, f+done.Load())
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

func echoOnce(addr string) error {
	conn, err := net.DialTimeout("tcp4", addr, ioWait)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioWait))
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		return err
	}
	got, err := io.ReadAll(conn) // until the backend closes
	if err != nil {
		return err
	}
	if string(got) != "ping\n" {
		return fmt.Errorf("echo %q", got)
	}
	return nil
}

// startRelay runs the userspace L4 relay on the balancer, as the gateway
// would: a process inside the balancer's namespace (this binary again,
// with -relay-serve) relaying LBAddr4:relayPort to the backends' own
// addresses. The returned func stops it.
func startRelay(n *lbnet.Net) (func() error, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var addrs, udpAddrs []string
	for _, b := range n.Backends {
		addrs = append(addrs, netip.AddrPortFrom(b.Addr4, tcpPort).String())
		udpAddrs = append(udpAddrs, netip.AddrPortFrom(b.Addr4, udpPort).String())
	}
	cmd := exec.Command("ip", "netns", "exec", n.LB.Name, self,
		"-relay-serve", netip.AddrPortFrom(lbnet.LBAddr4, relayPort).String(),
		"-relay-backends", strings.Join(addrs, ","),
		"-relay-udp-backends", strings.Join(udpAddrs, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		stdin.Close() // the child exits when its stdin ends
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() // our own child, by its PID
			return errors.Join(errors.New("relay child did not stop"), <-done)
		}
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("relay child said %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = errors.New("relay child not ready in 10s")
	}
	if err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

// benchPool is a round-robin pool over addrs.
func benchPool(name, protocol, addrs string) (*route.Pool, error) {
	pc := conf.Pool{Name: name, Algorithm: "round_robin"}
	for _, a := range strings.Split(addrs, ",") {
		pc.Backends = append(pc.Backends, conf.Backend{Address: a, Protocol: protocol, Weight: 1})
	}
	if err := pc.Prepare(name); err != nil {
		return nil, err
	}
	return route.NewPool(pc, route.Options{})
}

// serveRelay is the child: relay every connection on listen to backends
// with stages/l4 (goroutine per connection), and every datagram on the
// same address and port to udpBackends with the UDP relay (the gateway's
// [listeners.udp] defaults), until stdin ends.
func serveRelay(listen, backends, udpBackends string) error {
	pool, err := benchPool("bench", "tcp", backends)
	if err != nil {
		return err
	}
	upool, err := benchPool("bench-udp", "udp", udpBackends)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		return err
	}
	uaddr, err := net.ResolveUDPAddr("udp4", listen)
	if err != nil {
		return err
	}
	uconn, err := net.ListenUDP("udp4", uaddr)
	if err != nil {
		return err
	}
	relay, err := l4.NewUDPRelay(uconn, l4.UDPOptions{
		Pool:        func() *route.Pool { return upool },
		IdleTimeout: time.Duration(conf.DefaultUDPIdleTimeoutMs) * time.Millisecond,
		MaxFlows:    conf.DefaultUDPMaxFlows,
		MaxDatagram: conf.DefaultUDPMaxDatagram,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { relay.Serve(ctx) })
	wg.Go(func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
		ln.Close()
	})
	fmt.Println("ready")
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Go(func() { _, _ = l4.RelayTCP(ctx, conn, "bench", pool, route.Key{}, ioWait) })
	}
	wg.Wait()
	return nil
}

// udpRcvbufErrors reads the Udp RcvbufErrors counter of a namespace: the
// datagrams that arrived but found the socket buffer full.
func udpRcvbufErrors(ns lbnet.NS) (int64, error) { return udpSNMP(ns, "RcvbufErrors") }

// udpArrived counts the datagrams that reached the UDP layer of every
// backend: delivered to a socket or dropped at a full socket buffer. It
// is what the balancer managed to forward, whatever the backends' apps
// can read.
func udpArrived(n *lbnet.Net) (int64, error) {
	var sum int64
	for _, b := range n.Backends {
		for _, name := range []string{"InDatagrams", "RcvbufErrors"} {
			v, err := udpSNMP(b.NS, name)
			if err != nil {
				return 0, err
			}
			sum += v
		}
	}
	return sum, nil
}

// udpSNMP reads one Udp counter of /proc/net/snmp in a namespace.
func udpSNMP(ns lbnet.NS, counter string) (int64, error) {
	var v int64
	err := ns.Run(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i, name := range names {
				if name == counter && i < len(f) {
					_, err := fmt.Sscan(f[i], &v)
					return err
				}
			}
		}
		return fmt.Errorf("no Udp %s in snmp", counter)
	})
	return v, err
}
