// Command quicpt measures QUIC passthrough (Mode A) on loopback, with the
// gateway binary and in-process quic-go backends, every run bounded:
//
//  1. streams: -c connections × -s streams of 100 B echoes over raw QUIC
//     for -d, straight to three backends ("direct") and through a
//     passthrough listener on each backhaul (per_flow, spp): streams/s,
//     p50 and p99 (added latency is the p50 over direct's), the gateway's
//     CPU per stream and the datagrams/s it relayed;
//
//  2. flows: for each count of -flows, a fresh gateway on each backhaul
//     gets that many client 4-tuples (one Initial-shaped datagram each,
//     to UDP sinks): the flows it holds and the RSS they added.
//
//     go run ./bench/quicpt -d 5s -flows 10000,100000
//
// Run it from the repository root (it builds the gateway) or pass
// -gateway. It raises its open-file limit (each flow is a client socket,
// and on the per_flow backhaul a gateway socket too).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bench/load"
	"github.com/expressgateway/expressgateway/bench/proc"
	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/quiclb"
)

const alpn = "eg-bench-echo"

func main() {
	dur := flag.Duration("d", 5*time.Second, "duration of each streams run")
	conns := flag.Int("c", 16, "QUIC connections in the streams runs")
	streams := flag.Int("s", 16, "streams in flight per connection")
	flowList := flag.String("flows", "10000,100000", "flow counts of the memory runs (comma-separated; empty skips)")
	gw := flag.String("gateway", "", "gateway binary (default: go build the module in the current directory)")
	out := flag.String("out", "", "also write the tables as Markdown to this file")
	flag.Parse()
	if err := run(*dur, *conns, *streams, *flowList, *gw, *out); err != nil {
		fmt.Fprintln(os.Stderr, "quicpt:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, conns, streams int, flowList, gw, out string) error {
	dir, err := os.MkdirTemp("", "eg-quicpt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nofile := proc.RaiseNofile()
	if gw == "" {
		gw = filepath.Join(dir, "expressgateway")
		if b, err := exec.Command("go", "build", "-o", gw, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build gateway (run from the repository root, or pass -gateway): %v\n%s", err, b)
		}
	}
	certPEM, keyPEM, err := testcert.Generate("localhost")
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	client := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{alpn}}
	ctx := context.Background()

	var md strings.Builder
	fmt.Fprintf(&md, "## QUIC passthrough: streams (%d connections × %d streams, 100 B echo, %v)\n\n", conns, streams, dur)
	md.WriteString("| path | streams/s | p50 | p99 | added p50 | gateway CPU µs/stream | datagrams/s through | gateway peak RSS |\n|---|---|---|---|---|---|---|---|\n")
	var directP50 time.Duration
	for _, mode := range []string{"direct", "per_flow", "spp"} {
		row, p50, err := streamsRun(ctx, dir, gw, mode, cert, client, conns, streams, dur)
		if err != nil {
			row = fmt.Sprintf("| %s | error: %v | | | | | | |", mode, err)
		} else if mode == "direct" {
			directP50 = p50
			row = strings.Replace(row, "{added}", "—", 1)
		} else {
			row = strings.Replace(row, "{added}", fmt.Sprintf("%.0f µs", float64(p50-directP50)/1e3), 1)
		}
		fmt.Fprintln(os.Stderr, row)
		md.WriteString(row + "\n")
	}
	if flowList != "" {
		fmt.Fprintf(&md, "\n## QUIC passthrough: memory per flow (gateway open-file limit %d)\n\n", nofile)
		md.WriteString("| backhaul | flows asked | flows held | RSS added | per flow | note |\n|---|---|---|---|---|---|\n")
		for _, f := range strings.Split(flowList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("-flows: %w", err)
			}
			for _, mode := range []string{"per_flow", "spp"} {
				row := flowsRun(dir, gw, mode, n)
				fmt.Fprintln(os.Stderr, row)
				md.WriteString(row + "\n")
			}
		}
	}
	fmt.Println(md.String())
	if out != "" {
		return os.WriteFile(out, []byte(md.String()), 0o644)
	}
	return nil
}

// streamsRun loads one path and returns its table row (with an {added}
// placeholder) and its p50.
func streamsRun(ctx context.Context, dir, gw, mode string, cert tls.Certificate, client *tls.Config, conns, streams int, dur time.Duration) (string, time.Duration, error) {
	var backends []string
	for range 3 {
		b, stop, err := echoBackend(cert, mode == "spp")
		if err != nil {
			return "", 0, err
		}
		defer stop()
		backends = append(backends, b)
	}
	if mode == "direct" {
		r, err := load.QUICEcho(ctx, backends, client, conns, streams, 100, dur)
		if err != nil {
			return "", 0, err
		}
		return fmt.Sprintf("| direct | %.0f | %v | %v | {added} | — | — | — |", r.RPS, r.P50, r.P99), r.P50, nil
	}
	g, err := startGateway(dir, gw, mode, backends)
	if err != nil {
		return "", 0, err
	}
	defer g.p.Stop()
	cpu0, d0 := proc.CPUTime(g.p.PIDs()), g.datagrams()
	r, err := load.QUICEcho(ctx, []string{g.udp}, client, conns, streams, 100, dur)
	if err != nil {
		return "", 0, err
	}
	cpu, dg := proc.CPUTime(g.p.PIDs())-cpu0, g.datagrams()-d0
	if ex := g.p.Exited(); ex != nil {
		return "", 0, ex
	}
	return fmt.Sprintf("| passthrough, %s | %.0f | %v | %v | {added} | %.1f | %.0f | %.0f MiB |", mode, r.RPS, r.P50, r.P99,
		float64(cpu.Microseconds())/float64(r.Requests), dg/r.Elapsed.Seconds(), float64(proc.PeakRSS(g.p.PIDs()))/(1<<20)), r.P50, nil
}

// flowsRun opens n flows through a fresh gateway to UDP sinks and
// returns the table row.
func flowsRun(dir, gw, mode string, n int) string {
	var sinks []string
	for range 3 {
		a, stop, err := sink()
		if err != nil {
			return fmt.Sprintf("| %s | %d | error: %v | | | |", mode, n, err)
		}
		defer stop()
		sinks = append(sinks, a)
	}
	g, err := startGateway(dir, gw, mode, sinks)
	if err != nil {
		return fmt.Sprintf("| %s | %d | error: %v | | | |", mode, n, err)
	}
	defer g.p.Stop()
	time.Sleep(500 * time.Millisecond)
	base := proc.RSS(g.p.PIDs())
	note := ""
	f, err := load.OpenFlows(g.udp, n)
	if err != nil {
		return fmt.Sprintf("| %s | %d | error: %v | | | |", mode, n, err)
	}
	defer f.Close()
	held := g.metric("passthrough_flows")
	for pass := 0; pass < 30 && int(held) < f.Len(); pass++ {
		time.Sleep(time.Second)
		if now := g.metric("passthrough_flows"); now > held {
			held = now
			continue
		}
		f.Resend()
		held = g.metric("passthrough_flows")
	}
	time.Sleep(time.Second)
	held = g.metric("passthrough_flows")
	added := proc.RSS(g.p.PIDs()) - base
	if drops := g.metric("passthrough_dropped_total", `reason="upstream_socket"`); drops > 0 {
		note = strings.TrimSpace(note + fmt.Sprintf(" %.0f datagrams dropped: no upstream socket for a new flow (one file and one local port per flow)", drops))
	}
	per := "—"
	if held > 0 {
		per = fmt.Sprintf("%.1f KiB", float64(added)/held/1024)
	}
	return fmt.Sprintf("| %s | %d | %.0f | %.1f MiB | %s | %s |", mode, n, held, float64(added)/(1<<20), per, note)
}

// gateway is a running gateway binary with one passthrough listener.
type gateway struct {
	p       *proc.Proc
	udp     string
	metrics string
}

func startGateway(dir, bin, backhaul string, backends []string) (*gateway, error) {
	m, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	udp := u.LocalAddr().String()
	u.Close()
	q := make([]string, len(backends))
	for i, b := range backends {
		q[i] = strconv.Quote(b)
	}
	cfg := filepath.Join(dir, "pt.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
[observability]
metrics_bind = %q
access_log = false

[passthrough]
name = "pt"
bind_addr = %q
backends = [%s]
backhaul = %q
`, m, udp, strings.Join(q, ", "), backhaul), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	p, err := proc.Start(m, cmd)
	if err != nil {
		return nil, err
	}
	return &gateway{p: p, udp: udp, metrics: m}, nil
}

// metric sums the series of the gateway's /metrics named
// expressgateway_ + name whose labels hold every one of labels.
func (g *gateway) metric(name string, labels ...string) float64 {
	resp, err := http.Get("http://" + g.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "expressgateway_")
		i := strings.LastIndexByte(line, ' ')
		n := strings.IndexAny(line, "{ ")
		if i < 0 || line[:n] != name || !containsAll(line[n:i], labels) {
			continue
		}
		{
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// datagrams is every datagram relayed either way so far.
func (g *gateway) datagrams() float64 {
	return g.metric("passthrough_datagrams_total") + g.metric("passthrough_datagrams_to_client_total")
}

// echoBackend is a quic-go server that echoes every stream (behind
// quiclb.SPPConn when spp).
func echoBackend(cert tls.Certificate, spp bool) (string, func(), error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", nil, err
	}
	tr := &quic.Transport{Conn: udp}
	if spp {
		tr.Conn = quiclb.NewSPPConn(udp, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn}}, &quic.Config{MaxIncomingStreams: 1024})
	if err != nil {
		udp.Close()
		return "", nil, err
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
					wg.Go(func() { io.Copy(s, s); s.Close() })
				}
			})
		}
	})
	return udp.LocalAddr().String(), func() { ln.Close(); tr.Close(); udp.Close(); wg.Wait() }, nil
}

// sink is a UDP socket that reads and discards.
func sink() (string, func(), error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String(), func() { c.Close(); <-done }, nil
}
