package passthrough

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/frames/spp"
	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// maxDatagram is the largest datagram relayed either way. quic-go never
// sends more than 1452 bytes; loopback and jumbo paths could, so the
// buffers leave room and a longer datagram is dropped, never cut.
const maxDatagram = 2048

// sweep bounds: the idle sweeper ticks at a quarter of the idle timeout,
// within these.
const (
	minSweep = 10 * time.Millisecond
	maxSweep = time.Second
)

// Options configure a passthrough listener.
type Options struct {
	// Name labels metrics and logs.
	Name string
	// Pool returns the pool new flows pick from (swapped on reload).
	Pool func() *route.Pool
	// QUICLB are the QUIC-LB configs, each with its server IDs by backend
	// address; empty: no Connection ID decodes.
	QUICLB []QUICLB
	// MaxFlows bounds the flow table (LRU eviction); MaxFlowsPerIP bounds
	// one client address's flows (0 = none).
	MaxFlows, MaxFlowsPerIP int
	// IdleTimeout forgets flows and learned Connection IDs idle this long
	// (0 = never by age).
	IdleTimeout time.Duration
	// Backlog bounds the datagrams queued toward one flow's backend.
	Backlog int
	// MinClientDCIDLen drops an unroutable long header that would start a
	// flow with a shorter DCID.
	MinClientDCIDLen int
	// MaxDCIDLenRouted: longer DCIDs route by 4-tuple only.
	MaxDCIDLenRouted int
	// StrictSourceBinding: a short header from a new 4-tuple moves only
	// by a QUIC-LB-decodable DCID.
	StrictSourceBinding bool
	// AuditWindow logs each drop reason at most once per window.
	AuditWindow time.Duration
	// OnFlowEnd, if set, is called with each flow the listener forgets,
	// under its table lock: it must not block.
	OnFlowEnd func(stages.FlowEnd)
	// Backhaul is how datagrams reach the backends: a socket per flow
	// (BackhaulPerFlow) or one shared socket with an SPP header on each
	// datagram (BackhaulSPP).
	Backhaul Backhaul
	// Retry, when set, makes the listener answer tokenless Initials with
	// its own Retry and check the tokens that come back (mint_retry).
	Retry *RetryOptions
	// InitialRate bounds the long-header packets per second one client IP
	// may send that would start a flow (0 = none), InitialBurst the bucket
	// depth.
	InitialRate, InitialBurst int
	Log                       zerolog.Logger
}

// QUICLB is one QUIC-LB config and the server ID of each backend address.
type QUICLB struct {
	Config    quiclb.Config
	ServerIDs map[string]quiclb.ServerID
}

// Listener is one passthrough listener: its socket, flows and tables.
// Create it with New, run it with Serve.
type Listener struct {
	conn  *net.UDPConn
	local netip.AddrPort
	opts  Options
	dec   *quiclb.Decoder
	m     *listenerMetrics
	audit *throttle
	// codecs are the QUIC-LB codecs by config ID, to mint Retry SCIDs.
	codecs [quiclb.MaxConfigs]*quiclb.Codec

	now    atomic.Int64 // coarse clock, advanced by the sweeper
	routes atomic.Pointer[routes]
	bufs   sync.Pool    // *[]byte of maxDatagram
	shared *net.UDPConn // the SPP backhaul's socket; nil per flow

	mu      sync.Mutex // guards the tables below
	flows   map[netip.AddrPort]*flow
	lru     list.List // *flow, most recently active client side first
	perIP   map[netip.Addr]int
	learned *learned
	limit   *rateTable // nil: no initial_rate_per_ip
	closed  bool
	wg      sync.WaitGroup // flow goroutines
}

// flow is one client 4-tuple and its upstream socket to its backend.
type flow struct {
	client  netip.AddrPort
	backend *route.Backend
	addr    string       // the backend's address, as learned entries hold it
	conn    *net.UDPConn // nil on the SPP backhaul
	dst     netip.AddrPort
	backlog chan *[]byte
	elem    *list.Element
	touched int64        // the LRU order's time (under mu): last client datagram, or a later reply seen by sweep
	last    atomic.Int64 // coarse time of the last datagram either way
	cidLen  atomic.Int32 // length of the backend's SCIDs seen on this flow; 0 unknown
	start   time.Time
	// toBackend and toClient are the payload bytes relayed each way.
	toBackend, toClient atomic.Int64
}

// routes resolves server IDs and addresses against one pool.
type routes struct {
	pool   *route.Pool
	bySID  [quiclb.MaxConfigs]map[quiclb.ServerID]*route.Backend
	byAddr map[string]*route.Backend
	udp    map[*route.Backend]netip.AddrPort
	byUDP  map[netip.AddrPort]*route.Backend
	// With Retry: the address each backend sees this host as, and the
	// QUIC-LB server ID (first config naming it) a Retry SCID carries.
	sees  map[*route.Backend]netip.Addr
	sidOf map[*route.Backend]sidEntry
}

type sidEntry struct {
	codec *quiclb.Codec
	sid   quiclb.ServerID
}

// New prepares a listener on conn; Serve runs it and closes conn.
func New(conn *net.UDPConn, o Options) (*Listener, error) {
	if o.Pool == nil || o.MaxFlows < 1 || o.Backlog < 1 || o.MaxDCIDLenRouted < 1 || o.MaxDCIDLenRouted > quic.MaxConnIDLen {
		return nil, errors.New("passthrough: Pool, MaxFlows, Backlog and MaxDCIDLenRouted (1..20) are required")
	}
	cfgs := make([]quiclb.Config, len(o.QUICLB))
	for i, q := range o.QUICLB {
		cfgs[i] = q.Config
	}
	dec, err := quiclb.NewDecoder(cfgs)
	if err != nil {
		return nil, fmt.Errorf("passthrough %s: %w", o.Name, err)
	}
	if o.AuditWindow <= 0 {
		o.AuditWindow = time.Minute
	}
	if o.Retry != nil {
		r := *o.Retry
		if r.MaxAge <= 0 {
			r.MaxAge = DefaultRetryTokenMaxAge
		}
		o.Retry = &r
	}
	l := &Listener{
		conn:    conn,
		local:   conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		opts:    o,
		dec:     dec,
		m:       newListenerMetrics(o.Name),
		audit:   newThrottle(int64(o.AuditWindow)),
		flows:   make(map[netip.AddrPort]*flow),
		perIP:   make(map[netip.Addr]int),
		learned: newLearned(2*o.MaxFlows, int64(o.IdleTimeout)),
		limit:   newRateTable(o.InitialRate, o.InitialBurst, o.MaxFlows),
	}
	for _, c := range cfgs {
		if l.codecs[c.ID], err = quiclb.NewCodec(c); err != nil {
			return nil, fmt.Errorf("passthrough %s: %w", o.Name, err)
		}
	}
	l.bufs.New = func() any { b := make([]byte, maxDatagram+spp.Len); return &b }
	if o.Backhaul == BackhaulSPP {
		// Dual-stack and unbound: the backends may be IPv4 or IPv6.
		if l.shared, err = net.ListenUDP("udp", &net.UDPAddr{}); err != nil {
			return nil, fmt.Errorf("passthrough %s: backhaul socket: %w", o.Name, err)
		}
	}
	l.now.Store(time.Now().UnixNano())
	l.m.register(l)
	return l, nil
}

// Close closes the socket of a listener that was never served (a boot
// that failed after binding it).
func (l *Listener) Close() error {
	if l.shared != nil {
		l.shared.Close()
	}
	return l.conn.Close()
}

// Addr is the listener's bound address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Flows is the number of flows in the table.
func (l *Listener) Flows() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.flows)
}

// Learned is the number of learned Connection IDs.
func (l *Listener) Learned() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.learned.len()
}

// Serve forwards until ctx ends or the socket fails, then closes the
// socket and every flow and returns once every goroutine is done.
func (l *Listener) Serve(ctx context.Context) error {
	sweepCtx, stopSweep := context.WithCancel(ctx)
	var sw sync.WaitGroup
	sw.Go(func() { l.sweepLoop(sweepCtx) })
	if l.shared != nil {
		sw.Go(l.sppReplyLoop)
	}
	stop := context.AfterFunc(ctx, func() { l.conn.Close() })
	err := l.readLoop()
	stop()
	l.conn.Close()
	if l.shared != nil {
		l.shared.Close()
	}
	stopSweep()
	sw.Wait()
	l.mu.Lock()
	l.closed = true
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		l.closeLocked(e.Value.(*flow))
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.m.unregister(l)
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (l *Listener) readLoop() error {
	buf := make([]byte, maxDatagram+1)
	for {
		n, src, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		if n > maxDatagram {
			l.drop(reasonTooBig, src)
			continue
		}
		l.fromClient(netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), buf[:n])
	}
}

// fromClient routes one client datagram and hands it to its flow (onto
// the flow's backlog, or on SPP onto the shared socket once the tables
// are unlocked). Only
// the read loop calls it, so no flow of src appears while the mutex is let
// go for the Retry work (sealing and opening tokens).
func (l *Listener) fromClient(src netip.AddrPort, d []byte) {
	now := l.now.Load()
	long := quic.IsLongHeader(d[0])
	var ini quic.Header
	initial := false
	if long {
		ini, initial = parseInitial(d)
	}
	retry := l.opts.Retry != nil && initial
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	f := l.flows[src]
	if f != nil && !retry {
		l.touchLocked(f, d, now)
		spp := l.queueLocked(f, d)
		l.mu.Unlock()
		if spp {
			l.sppSend(f, d)
		}
		return
	}
	// A packet that would start a flow, or a tokenless Initial on a flow
	// that mint_retry answers (a new connection from the same 4-tuple).
	if f == nil && long || retry && len(ini.Token) == 0 {
		// RFC 9000 §14.1: a server discards an Initial in a datagram
		// under 1200 bytes, so no flow (and never a Retry, which would
		// amplify) is spent on one.
		if initial && len(d) < quic.MinInitialDatagram {
			l.mu.Unlock()
			l.drop(reasonInitialTooSmall, src)
			return
		}
		if l.limit != nil && !l.limit.allow(src.Addr(), time.Now().UnixNano()) {
			l.mu.Unlock()
			l.drop(reasonInitialRate, src)
			return
		}
	}
	l.mu.Unlock()
	if retry && !l.admitInitial(src, &ini, len(d), f != nil) {
		return
	}
	l.mu.Lock()
	f = l.flowOfLocked(src, d)
	spp := f != nil && l.queueLocked(f, d)
	l.mu.Unlock()
	if spp {
		l.sppSend(f, d)
	}
}

// flowOfLocked finds or opens the flow of a client datagram; nil: the
// datagram is dropped (and counted).
func (l *Listener) flowOfLocked(src netip.AddrPort, d []byte) *flow {
	now := l.now.Load()
	if l.closed {
		return nil
	}
	if f := l.flows[src]; f != nil {
		l.touchLocked(f, d, now)
		return f
	}
	b, how, why := l.pickLocked(src, d, now)
	if b == nil {
		l.drop(why, src)
		return nil
	}
	if max := l.opts.MaxFlowsPerIP; max > 0 && l.perIP[src.Addr()] >= max {
		l.drop(reasonPerIPCap, src)
		return nil
	}
	f, err := l.openLocked(src, b, now)
	if err != nil {
		l.drop(reasonDial, src)
		l.opts.Log.Debug().Err(err).Str("listener", l.opts.Name).Msg("passthrough: upstream socket")
		return nil
	}
	l.learnOnFlowLocked(f, d, now)
	l.m.packets[how].Inc()
	return f
}

// touchLocked marks f active with a datagram of its client.
func (l *Listener) touchLocked(f *flow, d []byte, now int64) {
	l.lru.MoveToFront(f.elem)
	f.touched = now
	f.last.Store(now)
	l.learnOnFlowLocked(f, d, now)
	l.m.packets[routeFlow].Inc()
}

// queueLocked puts d on f's backlog (per flow) or reports that the caller
// sends it on the shared socket after unlocking (SPP).
func (l *Listener) queueLocked(f *flow, d []byte) (spp bool) {
	if f.conn == nil {
		return true
	}
	l.enqueueLocked(f, d)
	return false
}

// pickLocked chooses the backend of a datagram from a new 4-tuple, by the
// first rule that decides (draft-21 §4.3): a QUIC-LB Connection ID, a
// learned one, the consistent hash of the 4-tuple.
func (l *Listener) pickLocked(src netip.AddrPort, d []byte, now int64) (*route.Backend, routeKind, dropReason) {
	rt := l.routesNow()
	if rt == nil {
		return nil, 0, reasonNoBackend
	}
	long := quic.IsLongHeader(d[0])
	var dcid []byte
	if long {
		h, err := quic.ParseInvariant(d, 0)
		if err != nil {
			return nil, 0, reasonMalformed
		}
		if h.Version == 0 {
			// A client never sends Version Negotiation (RFC 8999 §6).
			return nil, 0, reasonVersionNegotiation
		}
		dcid = h.DCID
	} else if len(d) > 1 {
		if k := l.dec.ConfigOf(d[1]); k != nil && len(d) >= 1+k.Config().CIDLen() {
			dcid = d[1 : 1+k.Config().CIDLen()]
		}
	}
	routable := len(dcid) <= l.opts.MaxDCIDLenRouted
	// 1. A QUIC-LB Connection ID names its server. A new connection's
	// random DCID that happens to decode goes there only while the
	// server takes new connections; an established one follows its
	// server while it drains.
	if routable && dcid != nil {
		if cfg, sid, why := l.dec.Decode(dcid); why == quiclb.Routable {
			if b := rt.bySID[cfg][sid]; b != nil && (!long || b.Available()) {
				return b, routeCID, 0
			}
		}
	}
	// 2. A learned Connection ID.
	if routable {
		if b := l.lookupLearnedLocked(rt, long, dcid, d, now); b != nil {
			if !long && l.opts.StrictSourceBinding {
				return nil, 0, reasonStrictBinding
			}
			if !long || b.Available() {
				return b, routeLearned, 0
			}
		}
	}
	if !long && l.opts.StrictSourceBinding {
		return nil, 0, reasonStrictBinding
	}
	if long && routable && len(dcid) < l.opts.MinClientDCIDLen {
		return nil, 0, reasonShortDCID
	}
	// 3. The fallback: a consistent hash of the 4-tuple, over backends
	// taking new connections.
	b, err := rt.pool.Pick(route.Key{Src: src.Addr(), Hash: hash4(src, l.local)})
	if err != nil {
		return nil, 0, reasonNoBackend
	}
	if long && routable {
		c, _ := quic.NewConnID(dcid)
		if l.learned.put(c, b.Address, now) {
			l.m.learnedEvicted.Inc()
		}
	}
	return b, routeFallback, 0
}

// lookupLearnedLocked finds a datagram's DCID in the learned table. A
// short header does not carry its DCID's length: every length the table
// holds is tried, longest first.
func (l *Listener) lookupLearnedLocked(rt *routes, long bool, dcid, d []byte, now int64) *route.Backend {
	if long {
		c, err := quic.NewConnID(dcid)
		if err != nil {
			return nil
		}
		if a, ok := l.learned.get(c, now); ok {
			return rt.byAddr[a]
		}
		return nil
	}
	for n := min(l.opts.MaxDCIDLenRouted, len(d)-1); n > 0; n-- {
		if l.learned.lens&(1<<n) == 0 {
			continue
		}
		c, _ := quic.NewConnID(d[1 : 1+n])
		if a, ok := l.learned.get(c, now); ok {
			return rt.byAddr[a]
		}
	}
	return nil
}

// learnOnFlowLocked records the DCID of a short header on a known flow
// (at the length its backend's SCIDs have), so that the connection keeps
// its backend if its 4-tuple changes. A QUIC-LB DCID needs no entry.
func (l *Listener) learnOnFlowLocked(f *flow, d []byte, now int64) {
	n := int(f.cidLen.Load())
	if quic.IsLongHeader(d[0]) || n == 0 || n > l.opts.MaxDCIDLenRouted || len(d) < 1+n {
		return
	}
	dcid := d[1 : 1+n]
	if _, _, why := l.dec.Decode(dcid); why == quiclb.Routable {
		return
	}
	c, _ := quic.NewConnID(dcid)
	if l.learned.put(c, f.addr, now) {
		l.m.learnedEvicted.Inc()
	}
}

// enqueueLocked copies d onto f's backlog, dropping it when the backlog
// is full.
func (l *Listener) enqueueLocked(f *flow, d []byte) {
	bp := l.bufs.Get().(*[]byte)
	*bp = append((*bp)[:0], d...)
	select {
	case f.backlog <- bp:
		f.toBackend.Add(int64(len(d)))
	default:
		l.bufs.Put(bp)
		l.drop(reasonBacklogFull, f.client)
	}
}

// openLocked makes the flow of src toward b: a connected upstream socket,
// its writer and its reader, at the head of the table (evicting the least
// recently active flow when full).
func (l *Listener) openLocked(src netip.AddrPort, b *route.Backend, now int64) (*flow, error) {
	rt := l.routesNow()
	dst, ok := rt.udp[b]
	if !ok {
		return nil, fmt.Errorf("passthrough: backend %s has no UDP address", b.Address)
	}
	if !b.ConnOpen() {
		return nil, fmt.Errorf("passthrough: backend %s at its max_connections", b.Address)
	}
	f := &flow{client: src, backend: b, addr: b.Address, dst: dst, touched: now, start: time.Now()}
	if l.shared == nil {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			b.ConnClosed()
			return nil, err
		}
		f.conn, f.backlog = conn, make(chan *[]byte, l.opts.Backlog)
	}
	for len(l.flows) >= l.opts.MaxFlows {
		l.m.evictCap.Inc()
		l.closeLocked(l.lru.Back().Value.(*flow))
	}
	f.last.Store(now)
	f.elem = l.lru.PushFront(f)
	l.flows[src] = f
	l.perIP[src.Addr()]++
	l.m.flowsTotal.Inc()
	if f.conn != nil {
		l.wg.Go(func() { l.writeLoop(f) })
		l.wg.Go(func() { l.replyLoop(f) })
	}
	return f, nil
}

// closeLocked forgets f and ends its goroutines.
func (l *Listener) closeLocked(f *flow) {
	if l.flows[f.client] != f {
		return
	}
	delete(l.flows, f.client)
	l.lru.Remove(f.elem)
	if l.perIP[f.client.Addr()]--; l.perIP[f.client.Addr()] <= 0 {
		delete(l.perIP, f.client.Addr())
	}
	if f.conn != nil {
		close(f.backlog)
		f.conn.Close()
	}
	f.backend.ConnClosed()
	if l.opts.OnFlowEnd != nil {
		l.opts.OnFlowEnd(stages.FlowEnd{Client: f.client, Backend: f.addr, Start: f.start, ToBackend: f.toBackend.Load(), ToClient: f.toClient.Load()})
	}
}

// writeLoop sends f's backlog to its backend.
func (l *Listener) writeLoop(f *flow) {
	for bp := range f.backlog {
		if _, err := f.conn.Write(*bp); err != nil && !errors.Is(err, net.ErrClosed) {
			l.m.sendErrors.Inc()
		}
		l.bufs.Put(bp)
	}
}

// replyLoop relays f's backend's datagrams to the client from the
// listener's address, learning the Source Connection IDs of long headers.
func (l *Listener) replyLoop(f *flow) {
	buf := make([]byte, maxDatagram+1)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable (ECONNREFUSED): the next may pass
		}
		if n > maxDatagram {
			l.drop(reasonTooBig, f.client)
			continue
		}
		now := l.now.Load()
		f.last.Store(now)
		if quic.IsLongHeader(buf[0]) {
			l.learnReply(f, buf[:n], now)
		}
		if _, err := l.conn.WriteToUDPAddrPort(buf[:n], f.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.m.sendErrors.Inc()
			continue
		}
		f.toClient.Add(int64(n))
		l.m.toClient.Inc()
	}
}

// learnReply records a backend long header's SCID → that backend (unless
// it decodes under QUIC-LB, which needs no state), and its length, the
// length the client's short headers will carry.
func (l *Listener) learnReply(f *flow, d []byte, now int64) {
	h, err := quic.ParseInvariant(d, 0)
	if err != nil || len(h.SCID) == 0 || len(h.SCID) > l.opts.MaxDCIDLenRouted {
		return
	}
	f.cidLen.Store(int32(len(h.SCID)))
	if _, _, why := l.dec.Decode(h.SCID); why == quiclb.Routable {
		return
	}
	c, _ := quic.NewConnID(h.SCID)
	l.mu.Lock()
	if !l.closed && l.learned.put(c, f.addr, now) {
		l.m.learnedEvicted.Inc()
	}
	l.mu.Unlock()
}

// routesNow returns the routes of the current pool, rebuilding them when
// the pool was swapped (a reload).
func (l *Listener) routesNow() *routes {
	p := l.opts.Pool()
	if p == nil {
		return nil
	}
	if rt := l.routes.Load(); rt != nil && rt.pool == p {
		return rt
	}
	rt := &routes{pool: p, byAddr: map[string]*route.Backend{}, udp: map[*route.Backend]netip.AddrPort{}, byUDP: map[netip.AddrPort]*route.Backend{}}
	for _, b := range p.Backends() {
		rt.byAddr[b.Address] = b
		if ua, err := net.ResolveUDPAddr("udp", b.Address); err == nil {
			ap := ua.AddrPort()
			rt.udp[b] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			rt.byUDP[rt.udp[b]] = b
		} else {
			l.opts.Log.Warn().Err(err).Str("listener", l.opts.Name).Str("backend", b.Address).Msg("passthrough: backend address does not resolve")
		}
	}
	for _, q := range l.opts.QUICLB {
		m := map[quiclb.ServerID]*route.Backend{}
		for addr, sid := range q.ServerIDs {
			if b := rt.byAddr[addr]; b != nil {
				m[sid] = b
			}
		}
		rt.bySID[q.Config.ID] = m
	}
	if r := l.opts.Retry; r != nil {
		rt.sees = map[*route.Backend]netip.Addr{}
		rt.sidOf = map[*route.Backend]sidEntry{}
		for b, dst := range rt.udp {
			if a, err := serverSees(dst, r.BackendDualStack); err == nil {
				rt.sees[b] = a
			} else {
				l.opts.Log.Warn().Err(err).Str("listener", l.opts.Name).Str("backend", b.Address).Msg("passthrough: no route to backend for Retry tokens")
			}
		}
		for i := len(l.opts.QUICLB) - 1; i >= 0; i-- { // the first config naming a backend wins
			q := l.opts.QUICLB[i]
			for addr, sid := range q.ServerIDs {
				if b := rt.byAddr[addr]; b != nil {
					rt.sidOf[b] = sidEntry{codec: l.codecs[q.Config.ID], sid: sid}
				}
			}
		}
	}
	l.routes.Store(rt)
	return rt
}

// sweepLoop advances the coarse clock and forgets idle flows and
// learned Connection IDs.
func (l *Listener) sweepLoop(ctx context.Context) {
	tick := maxSweep
	if l.opts.IdleTimeout > 0 {
		tick = min(max(l.opts.IdleTimeout/4, minSweep), maxSweep)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.now.Store(now.UnixNano())
			l.sweep(now.UnixNano())
		}
	}
}

// sweep closes the flows idle past the timeout. The list is ordered by
// client-side activity (touched); a stale tail flow whose backend spoke
// since is touched and moved to the front instead, so each sweep visits
// only flows stale on the client side.
func (l *Listener) sweep(now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.learned.expire(now)
	if l.limit != nil {
		l.limit.expire(now)
	}
	idle := int64(l.opts.IdleTimeout)
	if idle == 0 {
		return
	}
	for e := l.lru.Back(); e != nil && now-e.Value.(*flow).touched >= idle; e = l.lru.Back() {
		f := e.Value.(*flow)
		if last := f.last.Load(); now-last < idle {
			f.touched = last
			l.lru.MoveToFront(e)
			continue
		}
		l.m.evictIdle.Inc()
		l.closeLocked(f)
	}
}

// drop counts a dropped datagram and logs its reason at most once per
// audit window.
func (l *Listener) drop(r dropReason, src netip.AddrPort) {
	l.m.drops[r].Inc()
	if l.audit.allow(int(r), time.Now().UnixNano()) {
		l.opts.Log.Warn().Str("listener", l.opts.Name).Str("reason", r.String()).Str("client", src.String()).
			Msg("passthrough: datagram dropped (further drops of this kind are counted, not logged, for the audit window)")
	}
}

// hash4 hashes the client's and the listener's address and port: FNV-1a
// over their 16-byte forms, the same in every instance and every restart.
func hash4(client, local netip.AddrPort) uint64 {
	h := uint64(14695981039346656037)
	for _, ap := range [2]netip.AddrPort{client, local} {
		a := ap.Addr().As16()
		for _, c := range a {
			h ^= uint64(c)
			h *= 1099511628211
		}
		for _, c := range [2]byte{byte(ap.Port() >> 8), byte(ap.Port())} {
			h ^= uint64(c)
			h *= 1099511628211
		}
	}
	return h | 1 // never 0: route.Key.Hash 0 means "none"
}
