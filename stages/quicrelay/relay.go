package quicrelay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Application error codes the relay closes a connection with when the
// other side did not give one ("EG" in the high bytes, clear of the
// codes of common application protocols).
const (
	// CodeNoBackend closes a client connection no backend would take.
	CodeNoBackend quic.ApplicationErrorCode = 0x4547_0001
	// CodePeerLost closes one side when the other ended without an
	// application close (idle timeout, stateless reset, transport error).
	CodePeerLost quic.ApplicationErrorCode = 0x4547_0002
	// CodeShutdown closes both sides when the gateway's drain runs out.
	CodeShutdown quic.ApplicationErrorCode = 0x4547_0003
	// CodeInternal closes both sides of a connection whose relay failed
	// (a recovered panic).
	CodeInternal quic.ApplicationErrorCode = 0x4547_0004
	// CodeStreamLost resets (or stops) a stream whose other half could
	// not be relayed (its connection ended under it).
	CodeStreamLost quic.StreamErrorCode = 0x4547_0010
)

// Options configure a Relay.
type Options struct {
	// Listener names the series and log lines.
	Listener string
	// Pool is the pool connections are relayed to, read per connection
	// (a reload swaps it).
	Pool func() *route.Pool
	// TLS is the client config for a backend: its roots and server name.
	// The relay sets TLS 1.3 and the ALPN; it never skips verification.
	TLS func(b *route.Backend) (*tls.Config, error)
	// Settings are read as each connection starts (a reload changes them
	// for the connections after it).
	Settings func() Settings
	// StreamWindow and ConnWindow are the backend connection's receive
	// windows.
	StreamWindow, ConnWindow uint64
	Log                      zerolog.Logger
}

// defaultConnectTimeout bounds a backend handshake when Settings give none.
const defaultConnectTimeout = 5 * time.Second

// Settings are the limits one relayed connection runs under.
type Settings struct {
	// MaxStreams bounds the streams a connection relays at once; it is
	// also the backend's MAX_STREAMS credit, each kind.
	MaxStreams int
	// DgramQueue bounds the datagrams waiting in each direction of a
	// connection; past it the newest is dropped and counted.
	DgramQueue int
	// ConnectTimeout bounds one backend's QUIC handshake.
	ConnectTimeout time.Duration
	// IdleTimeout is the backend connection's QUIC idle timeout.
	IdleTimeout time.Duration
}

// Relay re-originates client QUIC connections to backends over one UDP
// socket of its own.
type Relay struct {
	o   Options
	udp *net.UDPConn
	tr  *quic.Transport
	// inflight counts the bytes read from one side and not yet handed to
	// the other (what the copy buffers hold); peak is its high-water mark.
	inflight, peak atomic.Int64
	// sessions are each backend's TLS session tickets, so a new
	// connection to it resumes (one cache per backend address: backends
	// sharing an SNI need not share ticket keys).
	sessions sync.Map // string → tls.ClientSessionCache
}

// sessionsPerBackend bounds the tickets kept for one backend.
const sessionsPerBackend = 64

func (r *Relay) sessionCache(addr string) tls.ClientSessionCache {
	if c, ok := r.sessions.Load(addr); ok {
		return c.(tls.ClientSessionCache)
	}
	c, _ := r.sessions.LoadOrStore(addr, tls.NewLRUClientSessionCache(sessionsPerBackend))
	return c.(tls.ClientSessionCache)
}

// New opens the relay's upstream socket (an ephemeral UDP port on every
// address: backends may be IPv4 or IPv6).
func New(o Options) (*Relay, error) {
	if o.Settings == nil || o.Pool == nil || o.TLS == nil {
		return nil, errors.New("quicrelay: Settings, Pool and TLS are required")
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("quicrelay: upstream socket: %w", err)
	}
	return &Relay{o: o, udp: udp, tr: &quic.Transport{Conn: udp}}, nil
}

// Close closes every backend connection and the upstream socket.
func (r *Relay) Close() error {
	err := r.tr.Close()
	r.udp.Close()
	return err
}

// InflightPeak is the most bytes the relay's copy buffers held at once.
func (r *Relay) InflightPeak() int64 { return r.peak.Load() }

func (r *Relay) hold(n int) {
	v := r.inflight.Add(int64(n))
	for {
		p := r.peak.Load()
		if v <= p || r.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// Result is what a relayed connection did, for its access-log line.
type Result struct {
	Backend             string // the backend it reached ("" if none)
	ALPN                string
	ToBackend, ToClient int64 // stream bytes each way
	Streams             int64 // streams relayed, both sides opening
}

// Serve relays client (a handshaken or handshaking server connection) to a
// backend until either side closes or ctx ends (the drain ran out), and
// returns once every stream and datagram goroutine is done. The client
// connection is always closed when it returns.
func (r *Relay) Serve(ctx context.Context, client *quic.Conn, remote netip.AddrPort) (Result, error) {
	var res Result
	select {
	case <-client.HandshakeComplete():
	case <-client.Context().Done():
		return res, fmt.Errorf("quicrelay: client handshake: %w", context.Cause(client.Context()))
	case <-ctx.Done():
		client.CloseWithError(CodeShutdown, "expressgateway: shutting down")
		return res, ctx.Err()
	}
	st := client.ConnectionState()
	res.ALPN = st.TLS.NegotiatedProtocol
	dgrams := st.SupportsDatagrams.Local && st.SupportsDatagrams.Remote
	set := r.o.Settings()
	set.MaxStreams, set.DgramQueue = max(set.MaxStreams, 1), max(set.DgramQueue, 1)
	if set.ConnectTimeout <= 0 {
		set.ConnectTimeout = defaultConnectTimeout
	}
	up, b, a, err := r.dial(ctx, remote, res.ALPN, dgrams, set)
	if err != nil {
		client.CloseWithError(CodeNoBackend, "expressgateway: no backend reachable")
		return res, err
	}
	res.Backend = b.Address
	defer func() { b.ConnClosed(); a.End(route.Outcome{Status: 200}) }()
	c := &conn{r: r, client: client, up: up, m: newConnSeries(r.o.Listener, b.Address), sem: make(chan struct{}, set.MaxStreams), dgramQueue: set.DgramQueue}
	c.m.conns.Inc()
	c.run(ctx, dgrams, dgrams && up.ConnectionState().SupportsDatagrams.Remote)
	res.ToBackend, res.ToClient, res.Streams = c.toBackend.Load(), c.toClient.Load(), c.streams.Load()
	return res, nil
}

// dial connects to a backend of the pool, trying each once (in the pool's
// order of preference) until one completes its handshake. The backend's
// connection and attempt are counted until the caller ends them.
func (r *Relay) dial(ctx context.Context, remote netip.AddrPort, alpn string, dgrams bool, set Settings) (*quic.Conn, *route.Backend, *route.Attempt, error) {
	pool := r.o.Pool()
	if pool == nil {
		noBackend(r.o.Listener).Inc()
		return nil, nil, nil, route.ErrNoBackend
	}
	key := route.Key{Src: remote.Addr().Unmap()}
	qc := &quic.Config{
		HandshakeIdleTimeout:           set.ConnectTimeout,
		MaxIdleTimeout:                 set.IdleTimeout,
		MaxIncomingStreams:             int64(set.MaxStreams),
		MaxIncomingUniStreams:          int64(set.MaxStreams),
		InitialStreamReceiveWindow:     r.o.StreamWindow,
		MaxStreamReceiveWindow:         r.o.StreamWindow,
		InitialConnectionReceiveWindow: r.o.ConnWindow,
		MaxConnectionReceiveWindow:     r.o.ConnWindow,
		// A backend's stream keeps its credit until the relay is done
		// with both halves, so MAX_STREAMS bounds what the relay holds.
		RequireStreamCreditRelease: true,
		EnableDatagrams:            dgrams,
	}
	var last error = route.ErrNoBackend
	for range pool.Backends() {
		b, err := pool.Pick(key)
		if err != nil {
			break
		}
		key.Exclude(b)
		a := b.Begin()
		if !b.ConnOpen() { // max_connections: the breaker refused it
			b.ConnClosed()
			a.End(route.Outcome{})
			last = route.ErrCircuitOpen
			continue
		}
		up, err := r.dialOne(ctx, b, alpn, qc, set.ConnectTimeout)
		if err == nil {
			return up, b, a, nil
		}
		b.ConnClosed()
		connectErrors(r.o.Listener, b.Address).Inc()
		if ctx.Err() != nil {
			a.End(route.Outcome{}) // the drain, not the backend
			return nil, nil, nil, ctx.Err()
		}
		a.End(route.Outcome{Err: &route.DialError{Err: err}})
		r.o.Log.Debug().Err(err).Str("listener", r.o.Listener).Str("backend", b.Address).Msg("quicrelay: backend connect failed")
		last = fmt.Errorf("quicrelay: backend %s: %w", b.Address, err)
	}
	if errors.Is(last, route.ErrNoBackend) {
		noBackend(r.o.Listener).Inc()
	}
	return nil, nil, nil, last
}

func (r *Relay) dialOne(ctx context.Context, b *route.Backend, alpn string, qc *quic.Config, timeout time.Duration) (*quic.Conn, error) {
	base, err := r.o.TLS(b)
	if err != nil {
		return nil, err
	}
	tc := base.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.InsecureSkipVerify = false
	tc.NextProtos = []string{alpn}
	tc.ClientSessionCache = r.sessionCache(b.Address)
	ua, err := net.ResolveUDPAddr("udp", b.Address)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	up, err := r.tr.Dial(dctx, ua, tc, qc)
	if err != nil {
		return nil, err
	}
	if got := up.ConnectionState().TLS.NegotiatedProtocol; got != alpn {
		up.CloseWithError(CodeNoBackend, "expressgateway: ALPN mismatch")
		return nil, fmt.Errorf("backend chose ALPN %q, the client %q", got, alpn)
	}
	return up, nil
}

// conn is one relayed client and backend connection pair.
type conn struct {
	r          *Relay
	client, up *quic.Conn
	m          *connSeries
	// sem holds a place per stream being relayed (MaxStreams in all).
	sem                 chan struct{}
	dgramQueue          int
	toBackend, toClient atomic.Int64
	streams             atomic.Int64
	wg                  sync.WaitGroup
}

// run relays until one side's connection ends, then closes the other
// with the same code and reason (or CodePeerLost), and waits for every
// goroutine.
func (c *conn) run(ctx context.Context, clientDgrams, dgrams bool) {
	// Both connections' contexts end when either does: the closer below
	// closes the survivor, which ends its accept loops and streams.
	done := make(chan struct{})
	c.goSafe(func() {
		defer close(done)
		select {
		case <-c.client.Context().Done():
			closeLike(c.up, c.client, "client")
		case <-c.up.Context().Done():
			closeLike(c.client, c.up, "backend")
		case <-ctx.Done():
			c.client.CloseWithError(CodeShutdown, "expressgateway: shutting down")
			c.up.CloseWithError(CodeShutdown, "expressgateway: shutting down")
		}
	})
	cctx, uctx := c.client.Context(), c.up.Context()
	c.goSafe(func() {
		acceptBidi(c, cctx, c.client.AcceptStream, c.up.OpenStreamSync, uctx, c.m.clientBidi, true)
	})
	c.goSafe(func() {
		acceptBidi(c, uctx, c.up.AcceptStream, c.client.OpenStreamSync, cctx, c.m.backendBidi, false)
	})
	c.goSafe(func() {
		acceptUni(c, cctx, c.client.AcceptUniStream, c.up.OpenUniStreamSync, uctx, c.m.clientUni, true)
	})
	c.goSafe(func() {
		acceptUni(c, uctx, c.up.AcceptUniStream, c.client.OpenUniStreamSync, cctx, c.m.backendUni, false)
	})
	switch {
	case dgrams:
		c.goSafe(func() {
			relayDatagrams(cctx, c.client.ReceiveDatagram, c.up.SendDatagram, c.dgramQueue, c.m.dgramToBackend, c.m.dropToBackend)
		})
		c.goSafe(func() {
			relayDatagrams(uctx, c.up.ReceiveDatagram, c.client.SendDatagram, c.dgramQueue, c.m.dgramToClient, c.m.dropToClient)
		})
	case clientDgrams:
		// The backend takes no datagrams: the client's are read, so
		// that they are counted as dropped rather than lost unseen.
		c.goSafe(func() {
			relayDatagrams(cctx, c.client.ReceiveDatagram, noDatagrams, 1, c.m.dgramToBackend, c.m.dropToBackend)
		})
	}
	<-done
	c.wg.Wait()
}

// goSafe runs fn on the connection's wait group; a panic in it is counted
// and logged, and closes this connection pair only.
func (c *conn) goSafe(fn func()) {
	c.wg.Go(func() {
		defer c.recovered()
		fn()
	})
}

// recovered is deferred by every goroutine of the pair.
func (c *conn) recovered() {
	if v := recover(); v != nil {
		stages.Panicked(c.r.o.Log, v, pairCloser{c})
	}
}

// pairCloser closes both connections of a pair with CodeInternal.
type pairCloser struct{ c *conn }

func (p pairCloser) Close() error {
	p.c.client.CloseWithError(CodeInternal, "expressgateway: internal error")
	return p.c.up.CloseWithError(CodeInternal, "expressgateway: internal error")
}

// closeLike closes dst the way src was closed: the peer's application
// code and reason when src's peer closed it, else CodePeerLost.
func closeLike(dst, src *quic.Conn, side string) {
	var ae *quic.ApplicationError
	if err := context.Cause(src.Context()); errors.As(err, &ae) && ae.Remote {
		dst.CloseWithError(ae.ErrorCode, ae.ErrorMessage)
		return
	}
	dst.CloseWithError(CodePeerLost, "expressgateway: "+side+" connection lost")
}

// acquire takes a stream place, or reports false once ctx (the accepting
// connection's) ends.
func (c *conn) acquire(ctx context.Context) bool {
	select {
	case c.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *conn) release() { <-c.sem }

// counters returns the byte counters of the direction away from the side
// that opened the stream (fromClient) and back.
func (c *conn) counters(fromClient bool) (out, back *atomic.Int64, outM, backM func(int)) {
	tb := func(n int) { c.m.bytesToBackend.Add(n) }
	tc := func(n int) { c.m.bytesToClient.Add(n) }
	if fromClient {
		return &c.toBackend, &c.toClient, tb, tc
	}
	return &c.toClient, &c.toBackend, tc, tb
}

// acceptBidi relays each bidirectional stream the accepting side's peer
// opens onto a new stream of the other connection.
func acceptBidi(c *conn, actx context.Context, accept func(context.Context) (*quic.Stream, error),
	open func(context.Context) (*quic.Stream, error), octx context.Context, opened interface{ Inc() }, fromClient bool) {
	for {
		s, err := accept(actx)
		if err != nil {
			return
		}
		if !c.acquire(actx) {
			s.CancelRead(CodeStreamLost)
			s.CancelWrite(CodeStreamLost)
			return
		}
		o, err := open(octx)
		if err != nil {
			c.release()
			s.CancelRead(CodeStreamLost)
			s.CancelWrite(CodeStreamLost)
			s.ReleaseStreamCredit()
			continue
		}
		opened.Inc()
		c.streams.Add(1)
		out, back, outM, backM := c.counters(fromClient)
		c.goSafe(func() {
			defer c.release()
			var halves sync.WaitGroup
			halves.Go(func() {
				defer c.recovered()
				c.r.pipe(o, s, out, outM)
			})
			c.r.pipe(s, o, back, backM)
			halves.Wait()
			s.ReleaseStreamCredit()
			o.ReleaseStreamCredit()
		})
	}
}

// acceptUni relays each unidirectional stream the accepting side's peer
// opens onto a new one of the other connection.
func acceptUni(c *conn, actx context.Context, accept func(context.Context) (*quic.ReceiveStream, error),
	open func(context.Context) (*quic.SendStream, error), octx context.Context, opened interface{ Inc() }, fromClient bool) {
	for {
		s, err := accept(actx)
		if err != nil {
			return
		}
		if !c.acquire(actx) {
			s.CancelRead(CodeStreamLost)
			return
		}
		o, err := open(octx)
		if err != nil {
			c.release()
			s.CancelRead(CodeStreamLost)
			s.ReleaseStreamCredit()
			continue
		}
		opened.Inc()
		c.streams.Add(1)
		out, _, outM, _ := c.counters(fromClient)
		c.goSafe(func() {
			defer c.release()
			c.r.pipe(o, s, out, outM)
			s.ReleaseStreamCredit()
		})
	}
}

// ALPNFilter is the accept stage's ALPN choice for a Mode B listener:
// every protocol the client offers, in its order (so its first choice is
// negotiated and offered upstream), narrowed to allowed when set.
func ALPNFilter(allowed []string) func(offered []string) []string {
	return func(offered []string) []string {
		if len(allowed) == 0 {
			return offered
		}
		var out []string
		for _, p := range offered {
			if slices.Contains(allowed, p) {
				out = append(out, p)
			}
		}
		return out
	}
}
