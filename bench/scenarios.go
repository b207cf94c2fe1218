package main

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/expressgateway/expressgateway/bench/load"
)

// scenario is one row of the headline table.
type scenario struct {
	key   string // -scenarios name
	title string // row heading
	// upstream is the protocol the proxies speak to the backend: h1, h2
	// (h2c) or h3.
	upstream string
	// front picks the address the load goes to ("" if the target lacks it).
	front func(*served) string
	// drive runs the load against addr for dur.
	drive func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error)
}

var errNoTool = errors.New("load tool not installed")

func wrk(path string, conns int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		if e.wrk == "" {
			return load.Result{}, errNoTool
		}
		return load.Wrk(ctx, e.wrk, "http://"+addr+path, 1, conns, dur)
	}
}

func h2load(path string, conns, streams int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		if e.h2load == "" {
			return load.Result{}, errNoTool
		}
		return load.H2load(ctx, e.h2load, e.dir, "https://"+addr+path, 1, conns, streams, dur)
	}
}

func h3(path string, conns, streams int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		return load.H3(ctx, "https://"+addr+path, e.certs.client, conns, streams, dur)
	}
}

// wsEcho drives tunnels WebSocket tunnels over HTTP/1.1, each echoing a
// 32 B message back to back, from several loopback sources (under the
// gateway's per-IP tunnel cap).
func wsEcho(tunnels int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		return load.WS(ctx, "ws://"+addr+wsPath, loopbackSources(tunnels, wsPerSource), tunnels, 32, dur)
	}
}

// wsMuxEcho drives tunnels WebSocket tunnels opened by extended CONNECT
// over HTTP/2 (the TLS front) or HTTP/3, as wsEcho does over HTTP/1.1; a
// target that does not offer it gets a "—".
func wsMuxEcho(proto string, tunnels int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		r, err := load.WSMux(ctx, proto, "https://"+addr+wsPath, e.certs.client, loopbackSources(tunnels, wsPerSource), wsPerSource, tunnels, 32, dur)
		if errors.Is(err, load.ErrNoExtendedConnect) {
			return r, errUnsupported
		}
		return r, err
	}
}

// wsPerSource is how many tunnels share one loopback source address:
// below the gateway's default max_tunnels_per_ip (256).
const wsPerSource = 200

// loopbackSources returns enough 127.0.x.y source addresses for n
// connections, perSource each.
func loopbackSources(n, perSource int) []netip.Addr {
	out := make([]netip.Addr, 0, n/perSource+1)
	for i := range n/perSource + 1 {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, byte(1 + (i+1)/256), byte((i + 1) % 256)}))
	}
	return out
}

// grpcUnary drives unary gRPC calls (100 B payload) with grpc-go over
// h2c.
func grpcUnary(conns, inflight int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		return load.GRPCUnary(ctx, addr, conns, inflight, smallSize, dur)
	}
}

// grpcStream reads 1 KiB messages off server streams (1,000 a call), one
// call at a time per connection, with grpc-go over h2c.
func grpcStream(conns int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		return load.GRPCServerStream(ctx, addr, conns, 1000, 1<<10, dur)
	}
}

func h1Front(s *served) string  { return s.h1 }
func h2cFront(s *served) string { return s.h2c }
func tlsFront(s *served) string { return s.tls }
func h3Front(s *served) string  { return s.h3 }

// scenarios are the rows in table order: the headline (HTTP/1.1 to the
// backend), then the other backend protocols, which run when asked for.
var scenarios = []scenario{
	{"h1-small", "H1→H1, 100 B GET, `wrk -t1 -c64`", "h1", h1Front, wrk(smallPath, 64)},
	{"h2-small", "H2 (TLS)→H1, 100 B GET, `h2load -t1 -c16 -m16`", "h1", tlsFront, h2load(smallPath, 16, 16)},
	{"h3-small", "H3→H1, 100 B GET, quic-go client 16 conns × 16 streams", "h1", h3Front, h3(smallPath, 16, 16)},
	{"h1-1mib", "H1→H1, 1 MiB GET, `wrk -t1 -c16`", "h1", h1Front, wrk(largePath, 16)},
	{"h2-1mib", "H2 (TLS)→H1, 1 MiB GET, `h2load -t1 -c4 -m4`", "h1", tlsFront, h2load(largePath, 4, 4)},
	{"h2-h2-small", "H2 (TLS)→H2 (h2c), 100 B GET, `h2load -t1 -c16 -m16`", "h2", tlsFront, h2load(smallPath, 16, 16)},
	{"h3-h2-small", "H3→H2 (h2c), 100 B GET, quic-go client 16 conns × 16 streams", "h2", h3Front, h3(smallPath, 16, 16)},
	{"h3-h3-small", "H3→H3, 100 B GET, quic-go client 16 conns × 16 streams", "h3", h3Front, h3(smallPath, 16, 16)},
	{"ws-echo", "WebSocket H1→H1, 32 B echo, 1,000 tunnels", "h1", h1Front, wsEcho(1000)},
	{"grpc-unary", "gRPC unary H2 (h2c)→H2 (h2c), 100 B, grpc-go 16 conns × 16 in flight", "h2", h2cFront, grpcUnary(16, 16)},
	{"grpc-stream", "gRPC server stream H2 (h2c)→H2 (h2c), 1 KiB messages, grpc-go 16 conns (a message counts)", "h2", h2cFront, grpcStream(16)},
	{"ws-h2-echo", "WebSocket H2 (TLS, RFC 8441)→H1, 32 B echo, 1,000 tunnels", "h1", tlsFront, wsMuxEcho("h2", 1000)},
	{"ws-h3-echo", "WebSocket H3 (RFC 9220)→H1, 32 B echo, 1,000 tunnels", "h1", h3Front, wsMuxEcho("h3", 1000)},
	// QUIC Mode B: the quic front relays QUIC itself to the HTTP/3
	// backend ("direct" is the same client on the backend).
	{"quic-modeb", "QUIC Mode B (raw_proxy)→H3, 100 B GET, quic-go client 16 conns × 16 streams", modeBUpstream, h3Front, h3(smallPath, 16, 16)},
	{"quic-modeb-1mib", "QUIC Mode B (raw_proxy)→H3, 1 MiB GET, quic-go client 4 conns × 4 streams", modeBUpstream, h3Front, h3(largePath, 4, 4)},
}

// modeBUpstream is the upstream of the Mode B scenarios: the gateway's
// quic front relays QUIC to the backend's HTTP/3 port; no peer does.
const modeBUpstream = "quic-modeb"

// headline is the default -scenarios: the issue-shaped table and memory.
var headline = []string{"h1-small", "h2-small", "h3-small", "h1-1mib", "h2-1mib", idleScenario}

// errUnsupported is a target's answer for a scenario it cannot serve
// (nginx and HAProxy to an HTTP/3 backend, for one): a "—" cell.
var errUnsupported = errors.New("not supported by this target")

// idleScenario is the memory scenario's -scenarios name.
const idleScenario = "idle"
