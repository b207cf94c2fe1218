package pipeline

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/accept"
	"github.com/expressgateway/expressgateway/stages/decode"
	"github.com/expressgateway/expressgateway/stages/guard"
	"github.com/expressgateway/expressgateway/stages/health"
	"github.com/expressgateway/expressgateway/stages/l4"
	"github.com/expressgateway/expressgateway/stages/quicrelay"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/translate"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// Via is our pseudonym in Via fields.
const Via = "expressgateway"

// Gateway is the running data plane of one config: its listeners, pools
// and the state reload and drain act on.
type Gateway struct {
	log zerolog.Logger

	mu        sync.Mutex // serialises Reload, ReloadCerts and Drain
	cfg       *conf.Config
	listeners []*listener
	// passthrough are the QUIC passthrough listeners (passthrough.go).
	passthrough []*ptListener
	pools       map[string]*route.Pool
	checkers    []*health.Checker // one per named pool, swapped on reload
	xdp         *bpf.Program      // the attached XDP fast path, or nil (xdp.go)
	xdpWatch    *xdpWatch         // drains unhealthy backends from xdp (xdp_health.go)
	gate        *accept.Gate
	// upstreams keeps each backend's connection pools across reloads.
	upstreams *backendConns
	// dns resolves the DNS-named backends and signals a change (dns.go).
	dns *dnsSet
	// transports are every upstream transport built (a reload that changes
	// their options builds new ones; requests in flight keep the old), all
	// closed once the gateway has drained.
	transports []upstream.Transport
	stopped    bool                        // Drain has begun: no more reloads
	view       atomic.Pointer[scrapeView]  // what scrapes report (metrics.go)
	running    atomic.Pointer[conf.Config] // g.cfg, for readers that must not wait on mu
	access     *accessLog                  // the access log's destination (accesslog.go)
	// tracing is the span pipeline, built at boot (its keys need a
	// restart), or nil (tracing.go).
	tracing *tracing

	acceptCtx  context.Context
	stopAccept context.CancelFunc
	wg         sync.WaitGroup // every serve goroutine and retiring listener
}

type listener struct {
	cfg   conf.Listener
	ln    net.Listener
	proxy *Proxy
	pool  atomic.Pointer[route.Pool] // L4 listeners' pool
	// streamLog is an L4 listener's access-log setting (nil: off).
	streamLog atomic.Pointer[streamLog]
	tlsCfg    atomic.Pointer[tls.Config]
	h1cfg     atomic.Pointer[decode.H1Config]
	h2cfg     atomic.Pointer[decode.H2Config]
	h3cfg     atomic.Pointer[decode.H3Config]
	quic      *accept.QUICListener
	srv       *accept.Server
	active    *metrics.Gauge
	conns     atomic.Int64
	udp       *udpListener     // udp listeners (xdp_udp.go)
	quicM     *quicSeries      // quic listeners' handshake series
	relay     *quicrelay.Relay // Mode B quic listeners (quicrelay.go)

	// tickets keys tlsCfg's session tickets (tickets.go); a restart key.
	tickets *ticketKeys
	// connect is an L4 listener's backend connect timeout (ns), reloadable.
	connect atomic.Int64
	// jitter is the drain jitter (ns) new connections are given.
	jitter atomic.Int64
	lifecycle
}

// New builds the data plane for cfg without opening any socket: pools,
// routes, certificates. Every error here stops the boot before a listener
// opens.
func New(cfg *conf.Config, log zerolog.Logger) (_ *Gateway, err error) {
	g := &Gateway{log: log, cfg: cfg, upstreams: newBackendConns(nil), dns: newDNSSet(cfg.Runtime.DNS, log)}
	g.running.Store(cfg)
	if g.access, err = newAccessLog(cfg.Observability.AccessLogPath); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.access.close()
			g.tracing.shutdown(time.Second)
		}
	}()
	if g.tracing, err = newTracing(cfg.Observability.Tracing, log); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	g.gate = accept.NewGate(cfg.Runtime.PerIPConnectionCap, cfg.Runtime.MaxInflightConnections)
	g.dns.begin()
	pools, err := buildPools(cfg, nil, g.upstreams, g.dns)
	if err != nil {
		return nil, err
	}
	g.pools = pools
	if g.checkers, err = g.newCheckers(cfg, pools); err != nil {
		return nil, err
	}
	for i := range cfg.Listeners {
		lc := cfg.Listeners[i]
		l := newListener(lc)
		if err := g.configure(l, cfg, g.upstreams); err != nil {
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		g.listeners = append(g.listeners, l)
	}
	g.dns.commit()
	if g.passthrough, err = g.newPassthroughs(cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// configure (re)builds a listener's reloadable state from cfg; bc keeps
// the connection pools of backends that stay.
func (g *Gateway) configure(l *listener, cfg *conf.Config, bc *backendConns) error {
	lc := l.cfg
	if lc.TLS != nil && l.tlsCfg.Load() == nil {
		tc, err := loadTLS(lc.TLS, &cfg.Runtime, !conf.IsL4(lc.Protocol))
		if err != nil {
			return err
		}
		if l.tickets == nil {
			if l.tickets, err = newTicketKeys(lc.TLS); err != nil {
				return err
			}
		}
		l.tickets.apply(tc)
		l.tlsCfg.Store(tc)
	}
	def, err := g.listenerPool(lc, cfg, bc)
	if err != nil {
		return err
	}
	l.drainSettings(cfg)
	if lc.ModeB() {
		return g.configureModeB(l, cfg, def, bc)
	}
	if conf.IsL4(lc.Protocol) {
		l.connect.Store(int64(ms(cfg.Runtime.ConnectTimeoutMs)))
		l.pool.Store(def)
		l.streamLog.Store(g.newStreamLog(cfg))
		return nil
	}
	table := &Table{}
	for i, rc := range lc.Routes {
		r := &Route{Name: rc.Name, host: lowerHost(rc.Host), pathPrefix: rc.PathPrefix, Direct: rc.DirectResponse}
		switch {
		case rc.Pool != "":
			r.Pool = g.pools[rc.Pool]
		case len(rc.Backends) > 0:
			pc := conf.Pool{Name: poolName(lc.Name + "-route" + strconv.Itoa(i)), Algorithm: "round_robin", Backends: rc.Backends}
			if r.Pool, err = newPool(pc, fmt.Sprintf("listeners.%s.routes[%d]", lc.Name, i), bc, nil, g.dns); err != nil {
				return err
			}
		}
		table.routes = append(table.routes, r)
	}
	if def != nil {
		table.def = &Route{Name: "default", Pool: def}
	}
	if l.proxy == nil {
		l.proxy = &Proxy{Listener: lc.Name, Log: g.log}
	}
	l.proxy.Table.Store(table)
	trusted := trustedProxies(cfg.Security.TrustedProxies)
	set := &ProxySettings{
		Forwarding:          translate.Forwarding{Via: Via, Trusted: trusted},
		TotalTimeout:        ms(lc.HTTP.TotalTimeoutMs),
		MaxRespBody:         lc.HTTP.MaxResponseBodyBytes,
		AccessLog:           cfg.Observability.AccessLog == nil || *cfg.Observability.AccessLog,
		AccessFormat:        cfg.Observability.AccessLogFormat,
		Access:              g.access,
		TrustRequestID:      cfg.Observability.TrustRequestID == nil || *cfg.Observability.TrustRequestID,
		AllowDomainFronting: lc.HTTP.AllowDomainFronting,
		GRPC:                grpcSettingsFor(lc.GRPC),
		Tracing:             g.tracing,
	}
	if lc.AltSvc != nil {
		set.AltSvc = translate.AltSvc(lc.AltSvc.H3Port, lc.AltSvc.MaxAge)
	}
	limits := h1.Limits{
		MaxHeadBytes: lc.HTTP.MaxHeaderBytes,
		MaxFields:    lc.HTTP.MaxHeaderFields,
		MaxURIBytes:  lc.HTTP.MaxURIBytes,
		Underscore:   underscorePolicy(cfg.Runtime.HeaderUnderscorePolicy),
		StrictTE:     cfg.Security.StrictTE,
	}
	uo := upstream.Options{
		ConnectTimeout: ms(cfg.Runtime.ConnectTimeoutMs),
		HeadTimeout:    ms(lc.HTTP.HeadTimeoutMs),
		BodyTimeout:    ms(lc.HTTP.BodyTimeoutMs),
		IdleTimeout:    ms(cfg.Runtime.UpstreamIdleTimeoutMs),
		MaxAge:         ms(cfg.Runtime.UpstreamMaxAgeMs),
		MaxIdle:        cfg.Runtime.UpstreamMaxIdlePerBackend,
	}
	// Transports hold the options they were built with; new options get
	// new transports, which new requests use while those in flight finish
	// on the old.
	set.upstream = uo
	wsSet := lc.WebSocketSettings()
	set.tunnelCaps = [2]int{wsSet.MaxTunnels, wsSet.MaxTunnelsPerIP}
	if old := l.proxy.Settings.Load(); old != nil && old.tunnelCaps == set.tunnelCaps {
		set.Tunnels = old.Tunnels // the tunnels open now stay counted
	} else {
		set.Tunnels = accept.NewGate(wsSet.MaxTunnelsPerIP, wsSet.MaxTunnels)
	}
	if old := l.proxy.Settings.Load(); old != nil && old.upstream == uo {
		set.Transports = old.Transports
	} else {
		// StrictTE on responses whatever strict_te says: a backend's coding
		// other than chunked could not be relayed to every front, and is
		// never dropped, so such a response is a 502.
		h1t := &upstream.H1{Opts: uo, Limits: h1.Limits{MaxHeadBytes: 64 << 10, MaxFields: 1024, Underscore: frames.UnderscoreAllow, StrictTE: true}}
		h2t, h3t := &upstream.H2{Opts: uo, Log: g.log}, h3Transport(uo)
		set.Transports = map[string]upstream.Transport{"h1": h1t, "tcp": h1t, "h2": h2t, "h3": h3t}
		g.transports = append(g.transports, h2t, h3t)
	}
	l.proxy.Settings.Store(set)
	draining := l.drainCtx.Done()
	h2c := h2Config(lc, cfg, l.drainCtx)
	h2c.Log = g.log
	h2c.DrainSpread = l.drainSpread
	l.h2cfg.Store(h2c)
	if lc.Protocol == "quic" {
		l.h3cfg.Store(h3Config(lc, cfg, draining, g.log))
	}
	l.h1cfg.Store(&decode.H1Config{
		Limits:        limits,
		HeaderTimeout: ms(lc.HTTP.HeaderTimeoutMs),
		IdleTimeout:   ms(lc.HTTP.IdleTimeoutMs),
		BodyTimeout:   ms(lc.HTTP.BodyTimeoutMs),
		WriteTimeout:  ms(lc.HTTP.WriteTimeoutMs),
		MaxBodyBytes:  lc.HTTP.MaxBodyBytes,
		MinBodyBps:    cfg.Runtime.Watchdog.BodyProgressMinBps,
		RateWindow:    10 * ms(cfg.Runtime.Watchdog.SweepIntervalMs),
		MaxRequests:   cfg.Runtime.MaxKeepaliveRequests,
		StreamBytes:   bus.DefaultStreamBytes,
		WS:            wsLimits(&lc),
		Global:        globalBudget,
		Log:           g.log,
		Drain:         l.drainCtx,
		DrainSpread:   l.drainSpread,
	})
	return nil
}

// listenerPool is the pool of a listener's default route: its named pool
// or a round-robin pool over its own backends.
func (g *Gateway) listenerPool(lc conf.Listener, cfg *conf.Config, bc *backendConns) (*route.Pool, error) {
	if lc.Pool != "" {
		return g.pools[lc.Pool], nil
	}
	if len(lc.Backends) == 0 {
		return nil, nil
	}
	pc := conf.Pool{Name: poolName(lc.Name), Algorithm: "round_robin", Backends: lc.Backends}
	return newPool(pc, "listeners."+lc.Name, bc, nil, g.dns)
}

// newPool builds the runtime pool of pc; a DNS-named backend becomes one
// backend per address of its name's last good set.
func newPool(pc conf.Pool, key string, bc *backendConns, prev *route.Pool, ds *dnsSet) (*route.Pool, error) {
	if err := pc.Prepare(key); err != nil {
		return nil, err
	}
	pc, err := ds.expand(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	p, err := route.NewPool(pc, route.Options{Previous: prev})
	if err != nil {
		return nil, err
	}
	for i, b := range p.Backends() {
		if b.Opts, err = bc.get(pc.Name, pc.Backends[i]); err != nil {
			return nil, fmt.Errorf("%s.backends[%d]: %w", key, i, err)
		}
	}
	return p, nil
}

func buildPools(cfg *conf.Config, prev map[string]*route.Pool, bc *backendConns, ds *dnsSet) (map[string]*route.Pool, error) {
	out := map[string]*route.Pool{}
	for i, pc := range cfg.Pools {
		p, err := newPool(pc, fmt.Sprintf("pools[%d]", i), bc, prev[pc.Name], ds)
		if err != nil {
			return nil, err
		}
		out[pc.Name] = p
	}
	return out, nil
}

// Start opens every listener and starts serving. If any listener cannot
// open, those already open are closed and the error names it.
func (g *Gateway) Start(ctx context.Context) (err error) {
	g.acceptCtx, g.stopAccept = context.WithCancel(ctx)
	g.access.start()
	defer func() {
		if err != nil {
			// A gateway that did not start is never drained: its access
			// log writer and span exporter stop here.
			g.access.close()
			g.tracing.shutdown(time.Second)
		}
	}()
	if err := g.startXDP(g.cfg); err != nil {
		return err
	}
	for i, l := range g.listeners {
		if err := g.open(ctx, l); err != nil {
			for _, o := range g.listeners[:i] {
				o.closeSocket()
			}
			g.stopXDP()
			return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
		}
	}
	for i, p := range g.passthrough {
		if err := g.openPassthrough(p); err != nil {
			for _, o := range g.passthrough[:i] {
				o.l.Close()
			}
			for _, o := range g.listeners {
				o.closeSocket()
			}
			g.stopXDP()
			return fmt.Errorf("passthrough listener %s: %w", p.cfg.Name, err)
		}
	}
	for _, l := range g.listeners {
		g.serve(l)
	}
	for _, p := range g.passthrough {
		g.servePassthrough(g.acceptCtx, p)
	}
	startCheckers(g.acceptCtx, g.checkers)
	g.dns.start(g.acceptCtx)
	g.dns.wg.Go(func() { g.followDNS(g.acceptCtx) })
	reloadLastOK.Set(float64(time.Now().Unix()))
	reloadLastGood.Set(1)
	g.publish()
	return nil
}

// Addr returns the bound address of the listener named name (tests bind
// port 0).
func (g *Gateway) Addr(name string) net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.listeners {
		if l.cfg.Name == name && l.ln != nil {
			return l.ln.Addr()
		}
		if l.cfg.Name == name && l.quic != nil {
			return l.quic.Addr()
		}
		if l.cfg.Name == name && l.udp != nil {
			return l.udp.conn.LocalAddr()
		}
	}
	return nil
}

func (g *Gateway) serve(l *listener) {
	if l.udp != nil {
		g.serveUDP(l)
		return
	}
	if l.quic != nil && l.relay != nil {
		g.serveModeB(l)
		return
	}
	if l.quic != nil {
		g.serveQUIC(l)
		return
	}
	var connsTotal *metrics.Counter
	l.active, connsTotal = listenerSeries(l)
	srv := &accept.Server{
		Gate:             g.gate,
		HandshakeTimeout: ms(g.cfg.Runtime.HandshakeTimeoutMs),
		Log:              g.log,
		ConnCtx:          l.connCtx,
		OnReject: func(r accept.Reject) {
			if r == accept.OverPerIP {
				guard.PerIPCap.Inc()
				rejectPerIP.Inc()
			} else {
				guard.InflightShed.Inc()
				rejectInflight.Inc()
			}
		},
	}
	if l.cfg.TLS != nil {
		srv.TLS = func() *tls.Config { return l.tlsCfg.Load() }
	}
	local := addrPortOf(l.ln.Addr())
	if conf.IsL4(l.cfg.Protocol) {
		srv.Handle = func(ctx context.Context, c net.Conn, remote netip.AddrPort) {
			l.conns.Add(1)
			defer l.conns.Add(-1)
			connsTotal.Inc()
			defer recoverConn(g.log, c)
			connect := time.Duration(l.connect.Load())
			start := time.Now()
			r, err := l4.RelayTCP(ctx, c, l.cfg.Name, l.pool.Load(), route.Key{Src: remote.Addr().Unmap()}, connect)
			if err != nil {
				g.log.Debug().Err(err).Str("listener", l.cfg.Name).Msg("relay")
			}
			l.streamLog.Load().conn(l.cfg.Name, l.cfg.Protocol, remote, start, r, err)
		}
	} else {
		srv.Shed = shedH1
		if l.cfg.TLS != nil {
			srv.Shed = func(c net.Conn) { c.Close() }
		}
		srv.Handle = func(ctx context.Context, c net.Conn, remote netip.AddrPort) {
			// This frame stays on the stack of an idle connection: what the
			// connection is served with is worked out in httpConn.
			hc := l.httpConn(c, remote, local, connsTotal)
			defer g.endHTTP(hc)
			decode.ServeHTTP(ctx, c, hc.info, l.h1cfg.Load(), l.h2cfg.Load(), l.proxy)
		}
	}
	l.srv = srv
	g.run(l, func(ctx context.Context) {
		if l.cfg.TLS != nil {
			// Tickets rotate while the listener accepts handshakes.
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() { l.tickets.rotate(ctx, l.tlsCfg.Load) })
		}
		srv.Serve(ctx, l.ln)
	})
}

// httpServe is what one connection of an HTTP listener is served with.
type httpServe struct {
	l    *listener
	c    net.Conn
	info *stages.ConnInfo
}

// httpConn returns what c is served with: its ConnInfo and the fronts'
// configs (shared: the drain jitter is the fronts' own, DrainSpread).
func (l *listener) httpConn(c net.Conn, remote, local netip.AddrPort, connsTotal *metrics.Counter) *httpServe {
	l.conns.Add(1)
	connsTotal.Inc()
	hc := &httpServe{l: l, c: c, info: &stages.ConnInfo{Listener: l.cfg.Name, Remote: remote, Local: local, Proto: "HTTP/1.1"}}
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		hc.info.TLS = &cs
	}
	return hc
}

// endHTTP runs when an HTTP connection's serving returns (or panics: as
// recoverConn, it keeps a panic on untrusted input to its connection).
func (g *Gateway) endHTTP(hc *httpServe) {
	if r := recover(); r != nil {
		stages.Panicked(g.log, r, hc.c)
	}
	hc.l.conns.Add(-1)
}

// recoverConn keeps a panic on untrusted input to its own connection:
// close it, log the stack, count it.
func recoverConn(log zerolog.Logger, c net.Conn) {
	if r := recover(); r != nil {
		stages.Panicked(log, r, c)
	}
}

// shedH1 answers a connection over the in-flight cap with a 503.
func shedH1(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"))
	c.Close()
}

// Drain stops accepting on every listener, lets in-flight requests finish
// (their responses carry Connection: close, idle keep-alive connections
// close, H2 and H3 get GOAWAY, each connection at its moment within the
// listener's drain jitter), and after each listener's budget (its own
// drain_timeout_ms, else timeout) cuts whatever is left of it. It returns
// when every goroutine is done.
func (g *Gateway) Drain(timeout time.Duration) {
	g.mu.Lock()
	g.stopped = true
	ls := append([]*listener(nil), g.listeners...)
	rt := g.cfg.Runtime
	g.mu.Unlock()
	// Stop accepting everywhere first, so no connection arrives after idle
	// ones close.
	if g.stopAccept != nil {
		g.stopAccept()
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		d, j := rt.Drain(&l.cfg, timeout)
		wg.Go(func() { g.drainListener(l, d, j) })
	}
	wg.Wait()
	g.dns.stop() // acceptCtx is done: the resolvers and followDNS return
	g.wg.Wait()  // listeners a reload removed finish their own drain
	g.mu.Lock()
	g.closeTransports()
	stopCheckers(g.checkers)
	g.stopXDP()
	g.unpublish()
	g.access.close()
	// Every request has ended its spans: export what is queued.
	g.tracing.shutdown(traceShutdownTimeout)
	g.mu.Unlock()
}

// wsLimits are a listener's WebSocket tunnel limits, nil when upgrades
// are off.
func wsLimits(lc *conf.Listener) *ws.Limits {
	w := lc.WebSocketSettings()
	if !*w.Enabled {
		return nil
	}
	return &ws.Limits{
		IdleTimeout:      time.Duration(w.IdleTimeoutSeconds) * time.Second,
		ReadFrameTimeout: time.Duration(w.ReadFrameTimeoutSeconds) * time.Second,
		MaxMessage:       int64(w.MaxMessageSizeBytes),
		PingsPerWindow:   w.PingRateLimitPerWindow,
		PingWindow:       time.Duration(w.PingRateLimitWindowSeconds) * time.Second,
	}
}

// extendedConnectLimits are the limits of WebSocket tunnels over an HTTP/2
// or HTTP/3 front (RFC 8441, RFC 9220), nil when WebSocket or that front's
// extended-CONNECT key (on) is off.
func extendedConnectLimits(lc *conf.Listener, on *bool) *ws.Limits {
	if !*on {
		return nil
	}
	return wsLimits(lc)
}

// SetAccessLogOutput sets where the access log goes when
// access_log_path is empty (os.Stderr by default; tests pass their log).
func (g *Gateway) SetAccessLogOutput(w io.Writer) { g.access.setStderr(w) }

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

func underscorePolicy(s string) frames.UnderscorePolicy {
	switch s {
	case "drop":
		return frames.UnderscoreDrop
	case "allow":
		return frames.UnderscoreAllow
	}
	return frames.UnderscoreReject
}

func trustedProxies(cidrs []string) func(netip.Addr) bool {
	var ps []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			ps = append(ps, p)
		} else if a, err := netip.ParseAddr(c); err == nil {
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return func(a netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// poolName makes a pool name (letters, digits, '_', '.', '-': safe as a
// metric label) for the anonymous pool of a listener or route.
func poolName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func lowerHost(h string) string { return hostOnly(h) }
