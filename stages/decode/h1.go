package decode

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// H1Config is what an HTTP/1.1 front needs from its listener's config.
type H1Config struct {
	Limits        h1.Limits
	HeaderTimeout time.Duration // the whole head, from its first byte
	IdleTimeout   time.Duration // keep-alive wait for the next request
	BodyTimeout   time.Duration // no body progress for this long → cut
	WriteTimeout  time.Duration
	MaxBodyBytes  int64
	MinBodyBps    int
	RateWindow    time.Duration
	MaxRequests   int // keep-alive request cap per connection; 0 = none
	StreamBytes   int64
	// WS, when set, accepts WebSocket upgrades under these limits; nil
	// declines them (the request goes on as plain HTTP, RFC 9110 §7.8).
	WS     *ws.Limits
	Global *bus.Budget // the process budget each connection's budget draws from (nil: none)
	Log    zerolog.Logger
	// Drain is done when the gateway drains: idle connections close, the
	// in-flight request's response carries Connection: close. A context,
	// not a channel, so a connection watches it without a goroutine.
	Drain context.Context
	// DrainSpread, when set, is called as Drain ends: an idle connection
	// closes at a random moment within what it returns (0: at once), to
	// spread the clients' reconnects. A function of the listener, so a
	// connection holds no context or config of its own for it.
	DrainSpread func() time.Duration
}

// pipelineDepth bounds how many pipelined requests may wait for their
// responses on one connection (RFC 9112 §9.3.2 pipelining).
const pipelineDepth = 16

// H1Conn serves one HTTP/1.x client connection: this goroutine reads and
// decodes requests, a write loop encodes responses in request order, and
// one stream actor per request runs the handler.
type H1Conn struct {
	conn    net.Conn
	info    *stages.ConnInfo
	cfg     *H1Config
	handler stages.Handler

	src    *Source
	rate   guard.BodyRate
	idle   atomic.Bool
	budget *bus.Budget // this connection's bytes in flight, under cfg.Global
	// halfClosed is set once the write side is shut after a final response.
	halfClosed atomic.Bool
	// stopRead is set by the write loop once no further request will be
	// answered; the reader checks it after arming its own read deadline,
	// which would otherwise undo the writer's wake-up.
	stopRead atomic.Bool
	queue    chan *encode.H1Exchange // nil while no write loop runs
	// The write loop runs only while exchanges are queued or being
	// written, so an idle keep-alive connection has one goroutine (the
	// reader), no queue and no write buffer. qmu orders the loop's exit
	// (queue found empty) against the reader's next enqueue, which starts
	// it again.
	qmu        sync.Mutex
	writing    bool
	out        *encode.H1Writer
	wclosed    bool // the write side is done: later exchanges are discarded
	wcancel    context.CancelCauseFunc
	wctx       context.Context
	streamInfo *stages.ConnInfo // the last info handed to a stream (infoFor)
	// The exchange whose actor runs inline and is not yet queued for the
	// writer (serveInline), the reader's context, and handOver as a func
	// made once per connection.
	inline     atomic.Pointer[encode.H1Exchange]
	inlineCtx  context.Context
	handOverFn func()
	wg         sync.WaitGroup
	// stopIdle and stopDrain unregister the wake-ups of the reader: on
	// the connection's end, and on the drain of an idle connection.
	stopIdle, stopDrain func() bool
	// idleDrain is set at this connection's moment of a drain (Drain plus
	// its share of DrainSpread): idle, it closes.
	idleDrain atomic.Bool
}

// ServeH1 serves conn until the client is done, an error, or ctx ends. It
// returns after every goroutine it started has finished; it closes conn.
func ServeH1(ctx context.Context, conn net.Conn, info *stages.ConnInfo, cfg *H1Config, h stages.Handler) {
	serveH1(ctx, conn, nil, 0, info, cfg, h)
}

// serveH1 is ServeH1 with n bytes already read from conn (the protocol
// sniff's) in buf, a buffer from getBuf that the connection then owns.
func serveH1(ctx context.Context, conn net.Conn, buf []byte, n int, info *stages.ConnInfo, cfg *H1Config, h stages.Handler) {
	newH1Conn(ctx, conn, buf, n, info, cfg, h).serve()
}

// serve reads and serves requests until the connection must stop, then
// ends it. Its frame is all of this connection's that sits on the
// goroutine's stack, with the callers' and the runtime's, while the
// connection waits idle, so that a collection shrinks that stack to the
// runtime's small sizes: setup, request handling and teardown live in
// callees for that reason.
func (c *H1Conn) serve() {
	defer c.release()
	served := 0
	for c.wctx.Err() == nil {
		started, ok := c.awaitHead(served)
		if !ok || !c.serveNext(c.wctx, started, &served) {
			break
		}
	}
	c.finish()
}

func newH1Conn(ctx context.Context, conn net.Conn, buf []byte, n int, info *stages.ConnInfo, cfg *H1Config, h stages.Handler) *H1Conn {
	c := &H1Conn{
		conn:    conn,
		info:    info,
		cfg:     cfg,
		handler: h,
		src:     NewSource(conn, cfg.Limits.MaxHeadBytes+frames.MaxDataChunk),
		budget:  bus.NewBudget(bus.DefaultConnBytes, cfg.Global),
		rate:    guard.BodyRate{MinBps: cfg.MinBodyBps, Window: cfg.RateWindow},
	}
	if buf != nil {
		c.src.Adopt(buf, n)
	}
	c.handOverFn = c.handOver
	c.src.Underscore = cfg.Limits.Underscore
	c.wctx, c.wcancel = context.WithCancelCause(ctx)
	c.out = encode.NewH1Writer(conn, cfg.WriteTimeout)
	c.out.Draining = c.draining
	c.stopIdle = context.AfterFunc(c.wctx, func() { conn.SetReadDeadline(time.Now()) })
	if cfg.Drain != nil {
		c.stopDrain = context.AfterFunc(cfg.Drain, func() {
			afterSpread(cfg.DrainSpread, func() {
				c.idleDrain.Store(true)
				if c.idle.Load() {
					conn.SetReadDeadline(time.Now())
				}
			})
		})
	}
	return c
}

// finish ends a connection whose reader is done: the running write loop
// finishes what is queued (a stopped one left the queue empty), then the
// connection closes.
func (c *H1Conn) finish() {
	c.qmu.Lock()
	if c.queue != nil {
		close(c.queue)
	}
	c.qmu.Unlock()
	c.wg.Wait()
	if c.halfClosed.Load() && c.wctx.Err() == nil {
		// Lingering close: unread request bytes at close(2) make the kernel
		// send RST, which can destroy our last response before the client
		// reads it (a client still sending the body we refused with 413,
		// say). Drain while the client keeps sending, as nginx's
		// lingering_close does, within bounded time.
		c.linger()
	}
	c.conn.Close()
}

// release drops what the connection registered and holds; it runs even
// when the reader panicked.
func (c *H1Conn) release() {
	if c.stopDrain != nil {
		c.stopDrain()
	}
	c.stopIdle()
	c.wcancel(nil)
	c.src.Close()
}

// The lingering close's bounds (nginx: lingering_time 30 s,
// lingering_timeout 5 s; shorter here): the client gets time to read our
// response and stop sending; the connection never lingers long.
const (
	lingerTotal = 5 * time.Second        // the longest a close lingers
	lingerIdle  = 500 * time.Millisecond // stop once the client pauses this long
)

func (c *H1Conn) linger() {
	end := time.Now().Add(lingerTotal)
	buf := make([]byte, 16<<10)
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(lingerIdle)
		if d.After(end) {
			d = end
		}
		c.conn.SetReadDeadline(d)
		if _, err := c.conn.Read(buf); err != nil {
			return
		}
	}
}

func (c *H1Conn) draining() bool {
	return c.cfg.Drain != nil && c.cfg.Drain.Err() != nil
}

// idleDraining reports whether an idle connection must close now.
func (c *H1Conn) idleDraining() bool { return c.idleDrain.Load() }

// afterSpread runs f at a random moment within what spread returns, now
// when spread is nil or returns 0. A timer, not a goroutine: firing after
// the connection ended is harmless.
func afterSpread(spread func() time.Duration, f func()) {
	var d time.Duration
	if spread != nil {
		d = spread()
	}
	if d <= 0 {
		f()
		return
	}
	time.AfterFunc(rand.N(d), f)
}

// enqueue hands an exchange to the write loop, starting the loop if it is
// not running. It returns false when ctx ends first (the exchange is then
// the caller's to discard).
func (c *H1Conn) enqueue(ctx context.Context, x *encode.H1Exchange) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if !c.writing {
		if c.queue == nil {
			c.queue = make(chan *encode.H1Exchange, pipelineDepth)
		}
		c.writing = true
		c.wg.Go(c.writeLoop)
	}
	// Sending under qmu cannot deadlock: the loop takes qmu only once the
	// queue is empty, and a full queue means it is busy draining it.
	select {
	case c.queue <- x:
		return true
	case <-ctx.Done():
		return false
	}
}

// next returns the next queued exchange; false means the loop stops: the
// queue is closed, or empty (then writing is cleared under qmu, so the next
// enqueue starts a new loop).
func (c *H1Conn) next() (*encode.H1Exchange, bool) {
	if x, ok, got := c.recv(); got {
		return x, ok
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if x, ok, got := c.recv(); got {
		return x, ok
	}
	// Release before the next loop may start: it owns c.out then. The
	// queue goes too (the next loop makes one): an idle connection holds
	// neither.
	c.out.Release()
	c.queue = nil
	c.writing = false
	return nil, false
}

// recv takes a queued exchange without waiting; got is false when none is
// queued. A closed queue releases the write buffer: no loop follows.
func (c *H1Conn) recv() (x *encode.H1Exchange, ok, got bool) {
	select {
	case x, ok = <-c.queue:
		if !ok {
			c.out.Release()
		}
		return x, ok, true
	default:
		return nil, false, false
	}
}

// writeLoop writes responses in request order until the queue is empty
// (or closed). On any write failure or a response that must end the
// connection it cancels the connection.
func (c *H1Conn) writeLoop() {
	defer func() {
		if r := recover(); r != nil {
			stages.Panicked(c.cfg.Log, r, c.conn)
			c.wcancel(errPanic)
			c.wclosed = true
			for x := range c.queue { // release the stream actors still queued
				x.Discard()
			}
		}
	}()
	w := c.out
	for {
		x, ok := c.next()
		if !ok {
			return
		}
		if c.wclosed {
			// The connection is closing: nothing more goes out, but every
			// stream actor must still be released.
			x.Discard()
			continue
		}
		// (Draining turns keep-alive off inside the writer: x is shared with
		// the reader, which must be the only one to touch it.)
		keep, err := w.WriteResponse(c.wctx, x)
		if errors.Is(err, encode.ErrDetached) {
			// An open tunnel's relay goes on without this goroutine; its
			// end continues this loop (tunnelOwner.Done).
			return
		}
		c.written(x, keep, err)
	}
}

// written ends the connection's write side after a response that must
// end it (or whose write failed).
func (c *H1Conn) written(x *encode.H1Exchange, keep bool, err error) {
	if err == nil && keep {
		return
	}
	x.Discard()
	c.wclosed = true
	if err != nil {
		c.wcancel(err)
	} else if tc, ok := c.conn.(interface{ CloseWrite() error }); ok {
		// Half-close: the client reads our last response to its end.
		tc.CloseWrite()
		c.halfClosed.Store(true)
	}
	// Stop the reader: no further request will be answered.
	c.stopRead.Store(true)
	c.conn.SetReadDeadline(time.Now())
}

// tunnelOwner is what an open tunnel's detached relay reports to: while
// it runs, the write loop is the relay's (writing stays set), and the
// connection's WaitGroup counts it.
type tunnelOwner struct {
	c *H1Conn
	x *encode.H1Exchange
}

func (o tunnelOwner) Detach() { o.c.wg.Add(1) }

func (o tunnelOwner) Done(keep bool, err error) {
	defer o.c.wg.Done()
	o.c.written(o.x, keep, err)
	o.c.writeLoop()
}

func (o tunnelOwner) Panicked(v any) { stages.Panicked(o.c.cfg.Log, v, o.c.conn) }

// serveNext reads and serves one request; false means the connection must
// stop.
func (c *H1Conn) serveNext(ctx context.Context, started bool, served *int) bool {
	x, req, err := c.readHead(ctx, started)
	if err != nil {
		c.answerError(err)
		return false
	}
	if x == nil {
		return false // clean end between requests
	}
	*served++
	if c.cfg.MaxRequests > 0 && *served >= c.cfg.MaxRequests {
		if x.KeepAlive {
			guard.KeepaliveCap.Inc()
		}
		x.KeepAlive = false
	}
	if c.draining() {
		x.KeepAlive = false
	}
	x.Stream.KeepAlive = x.KeepAlive
	if x.Tunnel != nil {
		if !c.serveTunnel(ctx, x, req.Head) {
			return false
		}
	} else if bodiless(req.Body) {
		if !c.serveInline(ctx, x, req.Head) {
			return false
		}
	} else {
		if !c.enqueue(ctx, x) {
			x.Stream.Req.Discard(context.Cause(ctx))
			x.Discard()
			return false
		}
		c.wg.Go(func() { c.handler.ServeStream(ctx, x.Stream) })
		if !c.readBody(ctx, x, req.Head, req.Body) {
			return false
		}
	}
	return x.KeepAlive && !c.stopRead.Load()
}

// awaitHead arms the deadline for the next request and, between requests,
// waits for its first bytes holding no buffer (Source.WaitIdle). started
// says a pipelined head is already buffered; false ok is a clean end (idle
// timeout, drain, the client gone, or the writer done with the
// connection).
func (c *H1Conn) awaitHead(served int) (started, ok bool) {
	if len(c.src.Buffered()) > 0 {
		// A pipelined head has begun: the header timeout runs from now.
		c.conn.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
		// The writer may have closed the exchange sequence before our
		// deadline was armed: its wake-up was overwritten, so look.
		return true, !c.stopRead.Load()
	}
	if c.idleDraining() && served > 0 {
		return false, false
	}
	c.idle.Store(true)
	wait := c.cfg.IdleTimeout
	if served == 0 {
		wait = c.cfg.HeaderTimeout
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	if (c.idleDraining() && served > 0) || c.stopRead.Load() || c.src.WaitIdle() != nil {
		// Idle timeout, drain wake-up or the client gone between
		// requests: a clean end.
		c.idle.Store(false)
		return false, false
	}
	return false, true
}

// headError is a request the decoder refuses before any stream exists.
type headError struct {
	status int
	extra  frames.Fields
}

func (e *headError) Error() string { return "decode: request refused: " + strconv.Itoa(e.status) }

// readHead parses the next request head, reading on as it trickles in
// (awaitHead came first; started says its head had begun). It returns nil,
// nil at a clean end (EOF or idle timeout before a first byte).
func (c *H1Conn) readHead(ctx context.Context, started bool) (*encode.H1Exchange, h1.Request, error) {
	for {
		if b := c.src.Buffered(); len(b) > 0 {
			req, n, err := h1.ParseRequest(b, &c.cfg.Limits)
			if err == nil {
				c.src.Consume(n)
				c.idle.Store(false)
				if req.Body.Kind == h1.BodyLength && req.Body.Length > c.cfg.MaxBodyBytes {
					// RFC 9110 §15.5.14: refuse before forwarding anything.
					guard.BodyTooLarge.Inc()
					return nil, h1.Request{}, &headError{status: 413}
				}
				if req.Body.Kind == h1.BodyChunked {
					if err := c.checkBody(); err != nil {
						return nil, h1.Request{}, err
					}
				}
				if req.Upgrade != "" && c.cfg.WS != nil && isWebSocket(req.Upgrade) {
					key, err := upgradeRequest(&req)
					if err != nil {
						return nil, h1.Request{}, err
					}
					x := c.newExchange(req)
					x.Tunnel = encode.NewTunnel(c.wctx, key)
					x.Stream.Tunnel = x.Tunnel.End
					x.Owner = tunnelOwner{c, x}
					return x, req, nil
				}
				return c.newExchange(req), req, nil
			}
			if !errors.Is(err, h1.ErrShort) {
				c.idle.Store(false)
				return nil, h1.Request{}, err
			}
			if !started {
				// First byte of a new head: from now on the header timeout
				// runs for the whole head, however slowly it trickles.
				started = true
				c.idle.Store(false)
				c.conn.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
			}
		}
		if err := c.src.Fill(); err != nil {
			c.idle.Store(false)
			if !started {
				return nil, h1.Request{}, nil
			}
			if isTimeout(err) {
				guard.SlowlorisReaped.Inc()
				return nil, h1.Request{}, &headError{status: 408}
			}
			return nil, h1.Request{}, nil // the client went away mid-head
		}
	}
}

// checkBody runs the framing of a chunked body over the bytes that came
// with its head, before the head is forwarded: a request that arrives in
// one piece with a malformed body never reaches a backend. A chunk-size
// or trailer line cut by the read is completed first (MaxChunkLineBytes
// bounds it), within one body timeout. Bytes past the buffer are checked
// as they are forwarded; a fault there aborts the backend's request.
func (c *H1Conn) checkBody() error {
	var ck chunkCheck
	armed := false
	for {
		partial, err := c.src.CheckChunked(&ck, c.cfg.MaxBodyBytes)
		switch {
		case errors.Is(err, ErrBodyTooLarge):
			guard.BodyTooLarge.Inc()
			return &headError{status: 413}
		case err != nil:
			return err
		case !partial:
			return nil
		}
		if !armed {
			c.conn.SetReadDeadline(time.Now().Add(c.cfg.BodyTimeout))
			armed = true
		}
		if err := c.src.Fill(); err != nil {
			switch {
			case errors.Is(err, errBufferFull):
				return nil // valid as far as it goes; the body path reads on
			case isTimeout(err):
				guard.SlowBodyReaped.Inc()
				return &headError{status: 408}
			}
			return &headError{status: 400} // the body was cut short
		}
	}
}

func (c *H1Conn) newExchange(req h1.Request) *encode.H1Exchange {
	h := req.Head
	h.Scheme = c.info.Scheme()
	st := &stages.Stream{
		Req:  bus.NewLink(c.cfg.StreamBytes, c.budget),
		Resp: bus.NewLink(c.cfg.StreamBytes, c.budget),
		Conn: c.infoFor(h.Proto),
	}
	return &encode.H1Exchange{
		Stream:    st,
		Method:    h.Method,
		HTTP10:    h.Proto == "HTTP/1.0",
		KeepAlive: req.KeepAlive,
	}
}

// infoFor returns the connection's info for a request in proto, shared by
// the connection's streams (they only read it), so that the common case
// of one protocol version per connection copies it once, and the
// connection's own version (its info's) not at all.
func (c *H1Conn) infoFor(proto string) *stages.ConnInfo {
	if c.info.Proto == proto {
		return c.info
	}
	if c.streamInfo == nil || c.streamInfo.Proto != proto {
		info := *c.info
		info.Proto = proto
		c.streamInfo = &info
	}
	return c.streamInfo
}

// readBody sends the head and then the body frames into the stream. It
// returns false when the connection cannot carry another request.
func (c *H1Conn) readBody(ctx context.Context, x *encode.H1Exchange, h *frames.Head, body h1.Body) bool {
	st := x.Stream
	if bodiless(body) {
		return c.sendHead(ctx, x, h)
	}
	if err := st.Req.Send(ctx, frames.HeadersFrame(h, false)); err != nil {
		return false
	}
	c.src.StartBody(body, c.cfg.MaxBodyBytes)
	c.rate.Reset()
	for c.src.InBody() {
		if len(c.src.Buffered()) == 0 {
			wait := c.rate.ReadDeadline(c.cfg.BodyTimeout)
			c.conn.SetReadDeadline(time.Now().Add(wait))
		}
		t0 := time.Now()
		f, err := c.src.NextBody()
		if !c.rate.Observe(time.Since(t0), f.Len()) {
			guard.SlowBodyReaped.Inc()
			f.Release()
			err = errSlowBody
		}
		if err != nil {
			code := frames.CodeCancel
			switch {
			case errors.Is(err, ErrBodyTooLarge):
				guard.BodyTooLarge.Inc()
				code = frames.CodeTooLarge
			case errors.Is(err, errSlowBody), isTimeout(err):
				code = frames.CodeTimeout
			case isProtocol(err):
				code = frames.CodeProtocol
			}
			// A body cut short is a Reset, never an End.
			st.Req.Send(ctx, frames.ResetFrame(code))
			st.Req.Close(&frames.ResetError{Code: code})
			return false
		}
		st.ReqBytes.Add(int64(f.Len()))
		if err := st.Req.Send(ctx, f); err != nil {
			return false
		}
	}
	st.Req.Close(io.EOF)
	return true
}

// serveInline runs the stream actor of a bodiless request in the reader's
// goroutine: the reader has nothing to read until the response is done
// (the next request waits for this one's response anyway), so this saves a
// goroutine and a hop per request. The exchange goes to the
// write loop when the actor sends its first response frame (or returns
// without one), so the writer wakes once, with the response under way,
// instead of once for the exchange and again for its head.
func (c *H1Conn) serveInline(ctx context.Context, x *encode.H1Exchange, h *frames.Head) bool {
	c.inlineCtx = ctx
	c.inline.Store(x)
	x.Stream.Resp.OnFirstSend(c.handOverFn)
	if !c.sendHead(ctx, x, h) {
		if c.inline.Swap(nil) != nil {
			x.Stream.Req.Discard(context.Cause(ctx))
			x.Discard()
		}
		return false
	}
	c.handler.ServeStream(ctx, x.Stream)
	c.handOver()
	return ctx.Err() == nil
}

// handOver queues the inline exchange, if not yet queued, for the writer.
// It runs in the actor's first Send (see serveInline).
func (c *H1Conn) handOver() {
	x := c.inline.Swap(nil)
	if x == nil {
		return
	}
	if !c.enqueue(c.inlineCtx, x) {
		// The connection is going: the actor's sends now fail.
		x.Discard()
	}
}

// bodiless reports whether a request has no body bytes to read.
func bodiless(body h1.Body) bool {
	return body.Kind == h1.BodyNone || (body.Kind == h1.BodyLength && body.Length == 0)
}

// sendHead sends the head of a bodiless request, which ends its direction.
func (c *H1Conn) sendHead(ctx context.Context, x *encode.H1Exchange, h *frames.Head) bool {
	if err := x.Stream.Req.Send(ctx, frames.HeadersFrame(h, true)); err != nil {
		return false
	}
	x.Stream.Req.Close(io.EOF)
	return true
}

var errSlowBody = errors.New("decode: request body below the minimum rate")

var errPanic = errors.New("decode: connection goroutine panicked")

func isProtocol(err error) bool {
	var he *h1.Error
	return errors.As(err, &he)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// answerError queues a local error response for a refused head and stops.
func (c *H1Conn) answerError(err error) {
	status := 400
	var extra frames.Fields
	var he *h1.Error
	var le *headError
	switch {
	case errors.As(err, &he):
		status = he.Status
		guard.Counter(he.Token).Inc()
		switch status {
		case 431:
			guard.HeadTooLarge.Inc()
		case 414:
			guard.URITooLong.Inc()
		default:
			guard.Smuggling.Inc()
		}
	case errors.As(err, &le):
		status, extra = le.status, le.extra
	}
	c.enqueue(context.Background(), &encode.H1Exchange{Method: "GET", Local: status, LocalFields: extra})
}
