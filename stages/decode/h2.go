package decode

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// H2Config is what an HTTP/2 front needs from its listener's config.
type H2Config struct {
	MaxConcurrentStreams int
	MaxHeaderListSize    int
	MaxFields            int
	StreamWindow         int // SETTINGS_INITIAL_WINDOW_SIZE we announce
	ConnWindow           int // our connection receive window
	MaxContinuation      int // frames per header block
	ControlPerSecond     int
	RapidResetThreshold  int
	LocalErrorResets     int // streams we may reset for the peer's errors before GOAWAY
	ZeroWindowTimeout    time.Duration
	MaxStreamsPerConn    int
	GlitchThreshold      int

	HeaderTimeout time.Duration // preface and every header block, from its first frame
	IdleTimeout   time.Duration // no stream open for this long → GOAWAY
	// BodyTimeout cuts a request body that makes no progress for this long
	// while the client could send (slow POST).
	BodyTimeout time.Duration
	// MinBodyBps is the minimum upload rate over each RateWindow of time
	// the client could send (0: no floor).
	MinBodyBps   int
	RateWindow   time.Duration
	WriteTimeout time.Duration
	MaxBodyBytes int64
	StreamBytes  int64 // bus budget of one stream direction
	SendBuf      int64 // response bytes one stream may hold toward the client (0: StreamBytes)
	// KeepAlive PINGs a client that sent nothing for this long (0: never);
	// an ACK not back within KeepAliveTimeout closes the connection.
	KeepAlive, KeepAliveTimeout time.Duration
	Global                      *bus.Budget // the process budget (nil: none)
	// Drain is done when the connection is to shut down gracefully (a
	// two-step GOAWAY); nil: never. DrainSpread is H1Config's: each
	// connection's GOAWAY goes out at a random moment within it.
	Drain       context.Context
	DrainSpread func() time.Duration

	// Log receives recovered panics of the connection's goroutines.
	Log zerolog.Logger

	// NewSender builds the connection's send side (encode.H2Writer).
	NewSender H2SenderFunc

	// Underscore is the policy for request field names with "_".
	Underscore frames.UnderscorePolicy

	// WS are the limits of WebSocket tunnels over HTTP/2 (RFC 8441); nil
	// when they are off: SETTINGS_ENABLE_CONNECT_PROTOCOL is not
	// announced, and :protocol is malformed.
	WS *ws.Limits
	// TunnelProtocols are the other extended CONNECT :protocol values
	// relayed as tunnels (bytes unexamined); any other gets 501.
	TunnelProtocols []string
}

// h2ReadBuf is the connection's read buffer: one full default frame plus
// its header, so most frames take one read.
const h2ReadBuf = 32 << 10

// h2LinkFrames bounds the frames on a request link: tiny DATA frames cost
// no budget bytes, so the count bound is what stops them piling up.
const h2LinkFrames = 256

// h2LingerTimeout is how long a connection we closed with an error still
// reads (and drops) what the client sent, so that our GOAWAY is not lost
// to a TCP reset.
const h2LingerTimeout = time.Second

// H2Conn serves one HTTP/2 client connection. This goroutine is the reader
// (decode + guard); the send side (H2Sender) has a writer goroutine while
// something is queued, which takes the streams' response frames off their
// links itself; each stream has one goroutine, its actor (the handler),
// which also retires the stream once its response is written.
type H2Conn struct {
	conn    net.Conn
	info    *stages.ConnInfo
	cfg     *H2Config
	handler stages.Handler

	codec  *h2.Conn
	out    H2Sender
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	br     *h2Reader
	ours   h2.Settings // the settings we announce

	inBudget, outBudget *bus.Budget

	mu        sync.Mutex
	streams   map[uint32]*h2Stream
	active    int
	tunnels   int // open streams that are tunnels: the watcher looks at none when 0
	inHeader  bool
	goingAway bool        // the final GOAWAY is queued: new streams are refused
	drainPing time.Time   // the first GOAWAY of a two-step shutdown and its PING went out
	fatal     atomic.Bool // a GOAWAY with an error is queued: stop
	// peerGoAway is set when the client's GOAWAY ends an idle connection:
	// its later frames (a PING, say) must be drained, not answered with RST.
	peerGoAway atomic.Bool
	// lastFrame (since born) and pingAcks are what the reader saw, for
	// the keep-alive rule (h2_keepalive.go).
	born      time.Time
	lastFrame atomic.Int64
	pingAcks  atomic.Uint64
	watch     h2Watch

	// Reader-owned guard state.
	limit    guard.StreamLimit
	rapid    guard.RapidReset
	local    guard.LocalResets
	block    guard.HeaderBlock
	glitch   guard.Glitches
	settings guard.FrameRate
	ping     guard.FrameRate
	empty    guard.FrameRate
	window   guard.FrameRate
	prio     guard.FrameRate
}

type h2Stream struct {
	id       uint32
	st       *stages.Stream
	finished <-chan struct{} // the send side is over
	cs       *h2.Stream
	cancel   context.CancelCauseFunc
	received int64
	reqDone  bool

	// rx counts request DATA bytes (reader writes, watcher reads);
	// bodyOpen is set while the request body is still due.
	rx       atomic.Int64
	bodyOpen atomic.Bool
	slow     slowBody // watcher-owned

	tun *h2Tunnel // an extended CONNECT's tunnel; set before the stream is shared
	raw bool      // a configured protocol's tunnel: no body cap
}

// ServeH2 serves an HTTP/2 connection until the client is done, an error,
// or ctx ends. r yields the connection's bytes; prefaceRead says the client
// preface was already consumed (h2c prior knowledge). It closes conn and
// returns after every goroutine it started has finished.
//
// Only ServeH2's, serve's and readLoop's frames sit on the goroutine's
// stack, with the callers' and the runtime's, while the connection waits
// idle (h2Reader.await), so that a collection shrinks that stack to the
// runtime's small sizes: setup, frame handling and teardown are callees.
func ServeH2(ctx context.Context, conn net.Conn, r io.Reader, prefaceRead bool, info *stages.ConnInfo, cfg *H2Config, h stages.Handler) {
	newH2Conn(ctx, conn, r, nil, info, cfg, h).serve(prefaceRead)
}

// newH2Conn sets up a connection whose bytes come from r, after pre (what
// the protocol sniff read past the preface).
func newH2Conn(ctx context.Context, conn net.Conn, r io.Reader, pre []byte, info *stages.ConnInfo, cfg *H2Config, h stages.Handler) *H2Conn {
	ctx, cancel := context.WithCancelCause(ctx)
	inf := *info
	inf.Proto = "HTTP/2"
	c := &H2Conn{
		conn:      conn,
		info:      &inf,
		cfg:       cfg,
		handler:   h,
		ctx:       ctx,
		cancel:    cancel,
		born:      time.Now(),
		inBudget:  bus.NewBudget(int64(max(cfg.ConnWindow, h2.InitialWindowSize)), cfg.Global),
		outBudget: bus.NewBudget(4*cfg.StreamBytes, cfg.Global),
		limit:     guard.StreamLimit{MaxConcurrent: cfg.MaxConcurrentStreams, MaxLifetime: cfg.MaxStreamsPerConn},
		rapid:     guard.RapidReset{Threshold: cfg.RapidResetThreshold},
		local:     guard.LocalResets{Threshold: cfg.LocalErrorResets},
		block:     guard.HeaderBlock{MaxFrames: cfg.MaxContinuation + 1, MaxEncoded: h2.MaxEncodedBlockFactor * cfg.MaxHeaderListSize},
		glitch:    guard.Glitches{Threshold: cfg.GlitchThreshold},
		settings:  guard.FrameRate{PerSecond: cfg.ControlPerSecond},
		ping:      guard.FrameRate{PerSecond: cfg.ControlPerSecond},
		empty:     guard.FrameRate{PerSecond: cfg.ControlPerSecond},
		window:    guard.FrameRate{PerSecond: cfg.ControlPerSecond},
		prio:      guard.FrameRate{PerSecond: cfg.ControlPerSecond},
	}
	c.ours = h2.Settings{
		HeaderTableSize:      h2.DefaultHeaderTableSize,
		EnablePush:           false,
		MaxConcurrentStreams: uint32(cfg.MaxConcurrentStreams),
		InitialWindowSize:    uint32(cfg.StreamWindow),
		MaxFrameSize:         h2.DefaultMaxFrameSize,
		MaxHeaderListSize:    uint32(cfg.MaxHeaderListSize),
		// RFC 8441 §3.
		EnableConnectProtocol: cfg.WS != nil || len(cfg.TunnelProtocols) > 0,
	}
	bw := h2.NewBufWriter(conn)
	c.br = newH2Reader(conn, r, pre)
	c.codec = h2.NewConn(h2.RoleServer, bw, c.br, c.ours)
	c.codec.MaxFields = cfg.MaxFields
	c.codec.Underscore = cfg.Underscore
	c.out = cfg.NewSender(conn, bw, h2.NewWriter(c.codec), func(err error) {
		// The writer failed (or panicked): the client is gone; stop
		// the reader too.
		if err != nil {
			cancel(err)
			conn.SetReadDeadline(time.Unix(1, 0))
		}
	})
	return c
}

func (c *H2Conn) serve(prefaceRead bool) {
	defer c.release()
	if c.start(prefaceRead) {
		c.readLoop()
	}
	c.finish()
}

// start sends our preface, arms the watcher and reads the client's
// preface; false: the client does not speak HTTP/2.
func (c *H2Conn) start(prefaceRead bool) bool {
	// RFC 9113 §3.4: the server preface is a SETTINGS frame, sent first.
	c.out.Settings(c.ours)
	if extra := c.cfg.ConnWindow - h2.InitialWindowSize; extra > 0 {
		c.codec.ConnWindow().Credit(extra)
		c.out.Credit(0, extra, false)
	}
	c.startWatch()
	c.conn.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
	return prefaceRead || readPreface(c.br)
}

// finish ends the connection once the reader is done.
func (c *H2Conn) finish() {
	if c.fatal.Load() {
		// Let the GOAWAY go out before anything is torn down.
		t := time.NewTimer(max(c.cfg.WriteTimeout, time.Second))
		select {
		case <-c.out.Done():
		case <-t.C:
		}
		t.Stop()
	}
	werr := c.out.Err()
	c.cancel(errConnDone)
	c.stopWatch()
	c.out.Shutdown()
	c.wg.Wait()
	if (c.fatal.Load() || c.peerGoAway.Load()) && werr == nil {
		c.linger()
	}
	c.conn.Close()
}

// release runs even when the reader panicked: the watcher stops (a second
// stop is harmless), the context ends, the read buffer goes back.
func (c *H2Conn) release() {
	c.stopWatch()
	c.cancel(nil)
	c.br.release()
}

var errConnDone = errors.New("decode: h2 connection done")

var errActorReturned = errors.New("decode: stream actor returned without closing its response")

// recoverConn keeps a panic on a connection goroutine to this connection:
// it is closed, logged and counted, and the reader stops.
func (c *H2Conn) recoverConn() {
	if r := recover(); r != nil {
		stages.Panicked(c.cfg.Log, r, c.conn) // the reader's next read fails
	}
}

// readPreface reads the client preface (RFC 9113 §3.4); a client that
// sends anything else is not speaking HTTP/2 and is closed.
func readPreface(r io.Reader) bool {
	var buf [len(h2.Preface)]byte
	_, err := io.ReadFull(r, buf[:])
	return err == nil && string(buf[:]) == h2.Preface
}

// linger half-closes and drops incoming bytes for a moment, so the client
// reads our GOAWAY before the socket goes away.
func (c *H2Conn) linger() {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.conn.SetReadDeadline(time.Now().Add(h2LingerTimeout))
	io.Copy(io.Discard, io.LimitReader(c.conn, 1<<20))
}

// readLoop reads and dispatches events until the connection must stop.
// Between frames it waits for bytes holding no read buffer (a cleartext
// socket's); the frame is then read and handled in step.
func (c *H2Conn) readLoop() {
	for c.br.await() && c.step() {
	}
}

// step reads and handles one event; false stops the reader.
func (c *H2Conn) step() bool {
	ev, err := c.codec.Next()
	if err != nil {
		return c.onError(ev, err)
	}
	c.lastFrame.Store(int64(time.Since(c.born)))
	return c.dispatch(ev)
}

// onError handles a codec or transport error; false stops the reader.
func (c *H2Conn) onError(ev h2.Event, err error) bool {
	var se *h2.StreamError
	var ce *h2.ConnError
	switch {
	case errors.As(err, &se):
		guard.Counter(se.Reason).Inc()
		if ev.Flow > 0 {
			c.out.Credit(0, ev.Flow, false)
			c.codec.ConnWindow().Credit(ev.Flow)
		}
		c.out.Reset(se.ID, se.Code)
		if s := c.lookup(se.ID); s != nil {
			c.abort(s, frames.CodeProtocol)
		}
		return c.localReset() && c.addGlitch(guard.GlitchStreamError)
	case errors.As(err, &ce):
		guard.Counter(ce.Reason).Inc()
		c.goAwayError(ce.Code, ce.Reason)
		return false
	}
	if c.fatal.Load() || c.ctx.Err() != nil {
		// The writer failed (the client is gone) or the connection is
		// over: its past read deadline is not a stale one to retry, and
		// retrying would spin while the streams wait for the reader.
		return false
	}
	if isTimeout(err) {
		c.mu.Lock()
		inHeader, active, away := c.inHeader, c.active, c.goingAway
		c.mu.Unlock()
		switch {
		case inHeader:
			// The H2 form of slowloris: a header block that never ends.
			guard.SlowlorisReaped.Inc()
			c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_header_timeout")
		case active == 0 && !away:
			c.goAwayGraceful() // idle
		case active > 0:
			c.setDeadline() // a stale idle deadline: streams are running
			return true
		}
	}
	return false
}

// dispatch handles one event; false stops the reader.
func (c *H2Conn) dispatch(ev h2.Event) bool {
	c.earn(ev)
	switch ev.Type {
	case h2.EvHeaders:
		c.endHeader()
		return c.open(ev)
	case h2.EvHeaderFragment:
		if ev.Frags == 1 {
			c.mu.Lock()
			c.inHeader = true
			c.mu.Unlock()
			c.conn.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
		}
		if !c.block.Allow(ev.Frags, ev.Encoded) {
			guard.H2ContinuationFlood.Inc()
			c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_continuation_flood")
			return false
		}
	case h2.EvData:
		return c.data(ev)
	case h2.EvTrailers:
		c.endHeader()
		if !c.block.Allow(ev.Frags, ev.Encoded) {
			guard.H2ContinuationFlood.Inc()
			c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_continuation_flood")
			return false
		}
		if s := c.lookup(ev.Stream); s != nil && !s.reqDone {
			s.bodyDone()
			s.st.Req.Send(c.ctx, frames.TrailersFrame(ev.Head.Fields))
			s.st.Req.Close(io.EOF)
		}
	case h2.EvReset:
		return c.clientReset(ev)
	case h2.EvWindowUpdate:
		if ev.Incr < guard.TinyWindowIncrement && !c.rate(&c.window, guard.H2WindowUpdateFlood, "h2_window_update_flood") {
			return false
		}
		if !c.out.WindowUpdate(ev.Stream, ev.Incr) {
			// RFC 9113 §6.9.1: a window above 2^31-1 is a
			// FLOW_CONTROL_ERROR, of the stream or the connection.
			if ev.Stream == 0 {
				c.goAwayError(h2.ErrCodeFlowControl, "h2_conn_window_overflow")
				return false
			}
			c.out.Reset(ev.Stream, h2.ErrCodeFlowControl)
			c.codec.Forget(ev.Stream)
			if s := c.lookup(ev.Stream); s != nil {
				c.abort(s, frames.CodeProtocol)
			}
			return c.localReset()
		}
	case h2.EvSettings:
		if !c.rate(&c.settings, guard.H2SettingsFlood, "h2_settings_flood") {
			return false
		}
		if !c.out.SettingsAck(ev.Settings, ev.InitialDelta) {
			c.goAwayError(h2.ErrCodeFlowControl, "h2_settings_window_overflow")
			return false
		}
	case h2.EvPing:
		if !c.rate(&c.ping, guard.H2PingFlood, "h2_ping_flood") {
			return false
		}
		c.out.PingAck(ev.Ping)
	case h2.EvPingAck:
		switch ev.Ping {
		case drainPing:
			c.goAwayFinal()
		case keepAlivePing:
			c.pingAcks.Add(1)
		}
	case h2.EvPriority:
		return c.rate(&c.prio, guard.H2PriorityFlood, "h2_priority_flood")
	case h2.EvGoAway:
		c.mu.Lock()
		c.goingAway = true
		idle := c.active == 0
		c.mu.Unlock()
		if idle {
			// Keep reading: the client closes when it is done, and until
			// then its frames (a PING, say) get answers, not an RST from a
			// close with unread input. The idle timeout bounds the wait.
			c.peerGoAway.Store(true)
		}
	case h2.EvIgnored, h2.EvUnknown:
		if ev.Flow > 0 {
			c.codec.ConnWindow().Credit(ev.Flow)
			c.out.Credit(0, ev.Flow, false)
		}
	}
	return true
}

// rate applies a control-frame flood rule.
func (c *H2Conn) rate(r *guard.FrameRate, ctr interface{ Inc() }, reason string) bool {
	if r.Allow(time.Now()) {
		return true
	}
	ctr.Inc()
	c.logFlood(r, reason)
	c.goAwayError(h2.ErrCodeEnhanceYourCalm, reason)
	return false
}

// addGlitch adds to the abuse score; false stops the reader.
func (c *H2Conn) addGlitch(w int) bool {
	switch c.glitch.Add(w) {
	case guard.GlitchGoAway:
		guard.H2GlitchGoAway.Inc()
		c.goAwayTwoStep()
	case guard.GlitchClose:
		guard.H2GlitchClose.Inc()
		c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_glitch_threshold")
		return false
	}
	return true
}

func (c *H2Conn) endHeader() {
	c.mu.Lock()
	was := c.inHeader
	c.inHeader = false
	c.mu.Unlock()
	if was {
		c.setDeadline()
	}
}

// setDeadline arms the read deadline for the connection's state: the idle
// timeout when no stream is open, none otherwise.
func (c *H2Conn) setDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setDeadlineLocked()
}

func (c *H2Conn) setDeadlineLocked() {
	switch {
	case c.inHeader:
	case c.active == 0 && c.goingAway:
		c.conn.SetReadDeadline(time.Unix(1, 0))
	case c.active == 0 && c.cfg.IdleTimeout > 0:
		c.conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	default:
		c.conn.SetReadDeadline(time.Time{})
	}
}

// goAwayGraceful sends GOAWAY(NO_ERROR) naming the last stream we accept;
// the connection closes once the streams below it are done.
func (c *H2Conn) goAwayGraceful() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goingAway {
		return
	}
	c.goingAway = true
	c.out.GoAway(c.codec.LastPeerStream(), h2.ErrCodeNo, "", false)
	if c.active == 0 {
		c.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// goAwayError sends GOAWAY with an error and stops the connection.
func (c *H2Conn) goAwayError(code h2.ErrCode, reason string) {
	if c.fatal.Swap(true) {
		return
	}
	c.out.GoAway(c.codec.LastPeerStream(), code, reason, true)
	c.conn.SetReadDeadline(time.Unix(1, 0))
}

func (c *H2Conn) lookup(id uint32) *h2Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// open starts a stream for a request head.
func (c *H2Conn) open(ev h2.Event) bool {
	id := ev.Stream
	c.mu.Lock()
	away, active := c.goingAway, c.active
	c.mu.Unlock()
	if away {
		// RFC 9113 §6.8: streams above our GOAWAY's last id are not
		// processed; REFUSED_STREAM tells the client it may retry them.
		c.out.Reset(id, h2.ErrCodeRefusedStream)
		c.codec.Forget(id)
		return true
	}
	verdict := c.limit.Open(active)
	if verdict == guard.StreamRefuse {
		// RFC 9113 §5.1.2: over SETTINGS_MAX_CONCURRENT_STREAMS, "the
		// endpoint ... MUST treat this as a stream error ... of type
		// PROTOCOL_ERROR or REFUSED_STREAM".
		guard.H2StreamRefused.Inc()
		c.out.Reset(id, h2.ErrCodeRefusedStream)
		c.codec.Forget(id)
		return c.addGlitch(guard.GlitchRefusedStream)
	}
	var handler stages.Handler = c.handler
	tunnel, raw := false, false
	method := "GET"
	if ev.Head != nil {
		method = ev.Head.Method
	}
	switch {
	case ev.Refuse == guard.HeaderListStatus:
		guard.H2HPACKBomb.Inc()
		handler = localStatus(ev.Refuse)
	case ev.Refuse != 0:
		guard.Smuggling.Inc()
		guard.Counter(ev.RefuseReason).Inc()
		handler = localStatus(ev.Refuse)
	case ev.Head.Protocol == "websocket" && c.cfg.WS != nil:
		tunnel = true
	case ev.Head.Protocol != "" && relaysProtocol(c.cfg.TunnelProtocols, ev.Head.Protocol):
		// A configured protocol's tunnel: its bytes are an unending body,
		// unexamined, with no body cap or timeout (the tunnel caps and the
		// idle timeout bound it).
		raw = true
		ev.Head.ContentLength = -1
	case ev.Head.Protocol != "":
		// An extended CONNECT for a protocol we do not relay.
		handler = localStatus(501)
	case ev.Head.ContentLength > c.cfg.MaxBodyBytes:
		// RFC 9110 §15.5.14: refuse before forwarding anything.
		guard.BodyTooLarge.Inc()
		handler = localStatus(413)
	}
	sctx, cancel := context.WithCancelCause(c.ctx)
	s := &h2Stream{id: id, cancel: cancel, raw: raw}
	s.cs = c.codec.Stream(id)
	window := c.cfg.StreamWindow
	req := bus.NewLink(max(c.cfg.StreamBytes, int64(window)), c.inBudget, bus.WithFrames(h2LinkFrames),
		bus.WithCredit(func(n int) { c.credit(s, n) }))
	sendBuf := c.cfg.SendBuf
	if sendBuf <= 0 {
		sendBuf = c.cfg.StreamBytes
	}
	resp := bus.NewLink(sendBuf, c.outBudget)
	s.st = &stages.Stream{Req: req, Resp: resp, Conn: c.info}
	isGRPC := ev.Head != nil && grpc.IsCall(ev.Head.Fields.Value("content-type"))
	s.finished = c.out.Open(id, resp, method, isGRPC, window)
	if tunnel {
		c.openTunnel(sctx, s, ev.Head, resp)
	}
	c.mu.Lock()
	if c.streams == nil {
		c.streams = map[uint32]*h2Stream{} // given up by retire when empty
	}
	c.streams[id] = s
	c.active++
	if tunnel {
		c.tunnels++
	}
	if c.active == 1 {
		c.setDeadlineLocked()
	}
	c.mu.Unlock()
	c.rewatch()

	c.wg.Go(func() {
		defer c.recoverConn()
		handler.ServeStream(sctx, s.st)
		// The actor closes the response (the Handler contract); a close
		// here is a no-op then, and otherwise ends it as an abort rather
		// than leave retire waiting on a response that never ends.
		s.st.Resp.Close(errActorReturned)
		c.retire(s)
	})

	head := ev.Head
	if head == nil {
		head = &frames.Head{Method: method, ContentLength: -1, Proto: "HTTP/2"}
	}
	s.reqDone = ev.End
	// A tunnel's bytes are no body: its own timeouts apply (watcher).
	s.bodyOpen.Store(!ev.End && !tunnel && !raw)
	if err := req.Send(c.ctx, frames.HeadersFrame(head, ev.End)); err == nil && ev.End {
		req.Close(io.EOF)
	}
	if verdict == guard.StreamLast {
		guard.H2StreamLifetime.Inc()
		c.goAwayGraceful()
	}
	return true
}

// retire removes a stream once its actor is done and its response is
// written (or dropped); it runs at the end of the actor's goroutine. The
// actor has closed the response link, so the writer writes its end, a
// status or a reset, or the connection's end drops it.
func (c *H2Conn) retire(s *h2Stream) {
	<-s.finished
	s.cancel(nil)
	if c.codec.RemoteOpen(s.id) {
		// RFC 9113 §8.1: the response is complete before the request:
		// ask the client to stop sending with RST_STREAM(NO_ERROR).
		c.out.Reset(s.id, h2.ErrCodeNo)
	}
	c.codec.Forget(s.id)
	c.out.Close(s.id)
	s.st.Req.Discard(io.EOF)
	c.mu.Lock()
	if delete(c.streams, s.id); len(c.streams) == 0 {
		c.streams = nil // an idle connection keeps no map
	}
	c.active--
	if s.tun != nil {
		c.tunnels--
	}
	if c.active == 0 {
		c.setDeadlineLocked()
	}
	c.mu.Unlock()
}

// credit reopens the client's windows as a stream's consumer drains its
// request link.
func (c *H2Conn) credit(s *h2Stream, n int) {
	if s.cs != nil {
		s.cs.Recv.Credit(n)
	}
	c.codec.ConnWindow().Credit(n)
	c.out.Credit(s.id, n, c.codec.RemoteOpen(s.id))
}

// abort ends a stream's request abnormally and cancels its actor.
func (c *H2Conn) abort(s *h2Stream, code frames.ErrCode) {
	err := &frames.ResetError{Code: code}
	s.st.Req.Close(err)
	s.cancel(err)
}

func (c *H2Conn) clientReset(ev h2.Event) bool {
	s := c.lookup(ev.Stream)
	if s == nil {
		return true
	}
	c.out.Drop(ev.Stream)
	c.abort(s, h2.ToNeutral(ev.Code))
	if !c.rapid.Reset(time.Now()) {
		guard.H2RapidReset.Inc()
		c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_rapid_reset")
		return false
	}
	return c.addGlitch(guard.GlitchClientReset)
}

// data forwards one DATA payload into the stream's request link.
func (c *H2Conn) data(ev h2.Event) bool {
	s := c.lookup(ev.Stream)
	n := len(ev.Data)
	if pad := ev.Flow - n; pad > 0 {
		// Padding never reaches the link: credit it at once.
		c.creditNow(s, pad)
	}
	if s == nil || s.reqDone {
		c.creditNow(s, n)
		return true
	}
	if n == 0 && !ev.End {
		if !c.rate(&c.empty, guard.H2EmptyDataFlood, "h2_empty_data_flood") {
			return false
		}
		return c.addGlitch(guard.GlitchEmptyFrame)
	}
	if s.tun != nil {
		// A tunnel's bytes are bounded per message, not as a body.
		c.tunnelData(s, ev.Data, ev.End)
		return true
	}
	s.received += int64(n)
	s.rx.Store(s.received)
	if s.received > c.cfg.MaxBodyBytes && !s.raw {
		// Over the body cap mid-stream: the backend must never see it
		// complete, and the client gets a reset.
		guard.BodyTooLarge.Inc()
		s.bodyDone()
		c.creditNow(s, n)
		c.out.Reset(s.id, h2.ErrCodeCancel)
		c.codec.Forget(s.id)
		c.abort(s, frames.CodeTooLarge)
		return true
	}
	c.forward(s, ev.Data, ev.End)
	return true
}

// forward copies one DATA payload onto the stream's request link; end
// closes it.
func (c *H2Conn) forward(s *h2Stream, data []byte, end bool) {
	for len(data) > 0 || end {
		k := min(len(data), frames.MaxDataChunk)
		last := k == len(data)
		f := frames.CopyData(data[:k], end && last)
		data = data[k:]
		if err := s.st.Req.Send(c.ctx, f); err != nil {
			// The consumer stopped reading: nothing will credit these.
			c.creditNow(s, k+len(data))
			break
		}
		if last {
			break
		}
	}
	if end {
		s.bodyDone()
		s.st.Req.Close(io.EOF)
	}
}

// bodyDone marks the request body as over (reader only).
func (s *h2Stream) bodyDone() {
	s.reqDone = true
	s.bodyOpen.Store(false)
}

// creditNow returns bytes that never reach a link.
func (c *H2Conn) creditNow(s *h2Stream, n int) {
	if n <= 0 {
		return
	}
	if s == nil {
		c.codec.ConnWindow().Credit(n)
		c.out.Credit(0, n, false)
		return
	}
	c.credit(s, n)
}

// localStatus is a stream actor that answers with a status of its own and
// forwards nothing.
type localStatus int

func (l localStatus) ServeStream(ctx context.Context, st *stages.Stream) {
	st.Req.Discard(io.EOF)
	h, text := encode.LocalResponse(int(l), "", false) // a refused stream's head may be unreadable
	if st.Resp.Send(ctx, frames.HeadersFrame(h, text == "")) == nil && text != "" {
		st.Resp.Send(ctx, frames.CopyData([]byte(text), true))
	}
	st.Resp.Close(io.EOF)
}
