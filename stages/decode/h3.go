package decode

import (
	"bufio"
	"context"
	"errors"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames/h3"
	fquic "github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// EarlyPolicy says what an HTTP/3 front does with a request that is not
// safe to replay and arrived in 0-RTT early data (RFC 8470).
type EarlyPolicy uint8

// The early-data policies.
const (
	// EarlyReject answers 425 Too Early (RFC 8470 §5.2).
	EarlyReject EarlyPolicy = iota
	// EarlyWait holds the request until the handshake completes, which a
	// replayed connection never does.
	EarlyWait
)

// H3Config is what an HTTP/3 front needs from its listener's config.
type H3Config struct {
	Limits       h3.Limits
	MaxBodyBytes int64
	StreamBytes  int64
	// ConnBytes bounds the bytes in flight across one connection's
	// streams, drawn from Global.
	ConnBytes int64
	Global    *bus.Budget
	// MaxStreamsPerConn is the lifetime request cap of one connection;
	// reaching it sends GOAWAY so the client moves to a fresh connection.
	MaxStreamsPerConn int
	ResetFlood        guard.ResetFlood // Max and Window; a template
	Allow0RTT         bool
	Early             EarlyPolicy
	HeaderTimeout     time.Duration // stream open → HEADERS complete
	BodyTimeout       time.Duration // no request-body progress for this long
	WriteTimeout      time.Duration
	// WS, when set, accepts WebSocket tunnels (RFC 9220) under these
	// limits; nil answers an extended CONNECT 501.
	WS *ws.Limits
	// TunnelProtocols are the other extended CONNECT :protocol values
	// relayed as tunnels (bytes unexamined); any other gets 501.
	TunnelProtocols []string
	// Datagrams takes and relays HTTP Datagrams (RFC 9297) on a
	// connection that negotiated QUIC datagrams.
	Datagrams bool
	// MaxStreams is the connection's concurrent request stream limit: a
	// datagram bound to a stream past what it lets the client open is an
	// H3_ID_ERROR.
	MaxStreams int64
	// Log receives the tunnel guards' closes.
	Log zerolog.Logger
	// Draining is closed when the gateway drains: every connection gets a
	// GOAWAY and finishes what it has.
	Draining <-chan struct{}
	// OnPanic reports a recovered panic of a connection goroutine.
	OnPanic func(v any, stack []byte)
}

// goAwayGrace is how long a connection that sent GOAWAY and has no stream
// left waits for the client to close it before closing it itself, so the
// last response's bytes are delivered, not cut by CONNECTION_CLOSE.
const goAwayGrace = 2 * time.Second

// h3Conn is one HTTP/3 client connection. The accept loop owns the stream
// accounting under mu; every stream and unidirectional stream runs in a
// goroutine the connection waits for.
type h3Conn struct {
	conn    *quic.Conn
	info    *stages.ConnInfo
	cfg     *H3Config
	handler stages.Handler
	budget  *bus.Budget

	ctrlMu sync.Mutex
	ctrl   *quic.SendStream

	mu       sync.Mutex
	active   int
	accepted int
	goaway   bool
	goawayID quic.StreamID
	lastID   quic.StreamID
	flood    guard.ResetFlood
	peerCtrl bool
	peerEnc  bool
	peerDec  bool
	idle     chan struct{} // closed when GOAWAY is out and no stream is left
	idleOnce sync.Once
	// dg carries the connection's HTTP Datagrams; nil when they are off
	// (by config, or the QUIC handshake did not enable them).
	dg *stages.H3DatagramMux

	wg sync.WaitGroup
}

// ServeH3 serves one QUIC connection that negotiated ALPN h3 until it
// closes or ctx ends. It returns after every goroutine it started is done;
// the connection is closed by then.
func ServeH3(ctx context.Context, conn *quic.Conn, info *stages.ConnInfo, cfg *H3Config, h stages.Handler) {
	c := &h3Conn{
		conn:    conn,
		info:    info,
		cfg:     cfg,
		handler: h,
		budget:  bus.NewBudget(cfg.ConnBytes, cfg.Global),
		flood:   guard.ResetFlood{Max: cfg.ResetFlood.Max, Window: cfg.ResetFlood.Window},
		idle:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer func() {
		if r := recover(); r != nil {
			c.panicked(r)
		}
		cancel(nil)
		c.conn.CloseWithError(quic.ApplicationErrorCode(h3.ErrCodeNoError), "")
		c.wg.Wait()
	}()
	// A client that offered no QUIC datagrams can send none: its streams
	// need no side channel.
	if ds := conn.ConnectionState().SupportsDatagrams; cfg.Datagrams && ds.Local && ds.Remote {
		c.dg = stages.NewH3DatagramMux(conn, true, uint64(max(cfg.MaxStreams, 1)))
	}
	if err := c.openControl(); err != nil {
		c.connError(h3.ErrCodeInternalError, "open control stream")
		return
	}
	if c.dg != nil {
		c.wg.Go(func() {
			var ce *h3.ConnError
			if err := c.dg.Run(ctx); errors.As(err, &ce) {
				c.connError(ce.Code, ce.Reason)
			}
		})
	}
	c.wg.Go(func() { c.uniLoop(ctx) })
	c.wg.Go(func() { c.watch(ctx) })
	c.acceptLoop(ctx)
}

func (c *h3Conn) panicked(r any) {
	if c.cfg.OnPanic != nil {
		c.cfg.OnPanic(r, debug.Stack())
	}
	c.conn.CloseWithError(quic.ApplicationErrorCode(h3.ErrCodeInternalError), "internal error")
}

// openControl opens our control stream and sends SETTINGS (RFC 9114
// §6.2.1: "Each side MUST initiate a single control stream at the beginning
// of the connection and send its SETTINGS frame as the first frame").
// QPACK_MAX_TABLE_CAPACITY and QPACK_BLOCKED_STREAMS stay at their default
// 0: the client may not use a dynamic table with us.
func (c *h3Conn) openControl() error {
	s, err := c.conn.OpenUniStream()
	if err != nil {
		return err
	}
	c.ctrl = s
	settings := h3.SettingsFrame{Settings: []h3.Setting{{ID: h3.SettingMaxFieldSectionSize, Value: uint64(c.maxSection())}}}
	if c.cfg.WS != nil || len(c.cfg.TunnelProtocols) > 0 {
		// RFC 9220 §3: extended CONNECT carries WebSocket (and the
		// configured protocols') tunnels.
		settings.Settings = append(settings.Settings, h3.Setting{ID: h3.SettingEnableConnectProtocol, Value: 1})
	}
	if c.dg != nil {
		// RFC 9297 §2.1.1: we take HTTP Datagrams.
		settings.Settings = append(settings.Settings, h3.Setting{ID: h3.SettingH3Datagram, Value: 1})
	}
	b := fquic.AppendVarint(nil, uint64(h3.StreamTypeControl))
	_, err = s.Write(settings.Append(b))
	return err
}

func (c *h3Conn) maxSection() int {
	if c.cfg.Limits.MaxSize > 0 {
		return c.cfg.Limits.MaxSize
	}
	return h3.DefaultMaxFieldSectionSize
}

// connError closes the connection with an HTTP/3 error code.
func (c *h3Conn) connError(code h3.ErrCode, reason string) {
	guard.H3ConnError.Inc()
	c.conn.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// acceptLoop accepts request streams, enforcing the lifetime cap with
// GOAWAY and refusing streams past a GOAWAY.
func (c *h3Conn) acceptLoop(ctx context.Context) {
	for {
		str, err := c.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.goaway && str.StreamID() >= c.goawayID {
			c.mu.Unlock()
			// RFC 9114 §5.2: requests on streams at or past the GOAWAY
			// identifier are rejected; the client may retry them elsewhere.
			str.CancelRead(quic.StreamErrorCode(h3.ErrCodeRequestRejected))
			str.CancelWrite(quic.StreamErrorCode(h3.ErrCodeRequestRejected))
			str.ReleaseStreamCredit()
			continue
		}
		c.accepted++
		c.active++
		c.lastID = str.StreamID()
		capped := c.cfg.MaxStreamsPerConn > 0 && c.accepted >= c.cfg.MaxStreamsPerConn && !c.goaway
		c.mu.Unlock()
		if capped {
			guard.H3StreamLifetime.Inc()
			c.sendGoAway()
		}
		var d *stages.Datagrams
		if c.dg != nil {
			// Bound from the start: a client may send a stream's datagrams
			// as soon as it opens it (RFC 9297 §2.1).
			id := uint64(str.StreamID())
			d = stages.NewDatagrams(c.dg.Sink(id))
			c.dg.Add(id, d)
		}
		c.wg.Go(func() { c.serveStream(ctx, str, d) })
	}
}

// sendGoAway announces that no stream after the last accepted one will be
// processed (RFC 9114 §5.2). It is sent once.
func (c *h3Conn) sendGoAway() {
	c.mu.Lock()
	if c.goaway {
		c.mu.Unlock()
		return
	}
	c.goaway = true
	c.goawayID = c.lastID + 4
	if c.accepted == 0 {
		c.goawayID = 0
	}
	id := c.goawayID
	idle := c.active == 0
	c.mu.Unlock()
	c.ctrlMu.Lock()
	c.ctrl.Write(h3.GoAwayFrame{ID: uint64(id)}.Append(nil))
	c.ctrlMu.Unlock()
	if idle {
		c.idleOnce.Do(func() { close(c.idle) })
	}
}

// streamDone ends one request stream's accounting.
func (c *h3Conn) streamDone(str *quic.Stream, d *stages.Datagrams) {
	if d != nil {
		c.dg.Remove(uint64(str.StreamID()))
		d.Close()
	}
	str.ReleaseStreamCredit()
	c.mu.Lock()
	c.active--
	idle := c.goaway && c.active == 0
	c.mu.Unlock()
	if idle {
		c.idleOnce.Do(func() { close(c.idle) })
	}
}

// watch sends GOAWAY when the gateway drains, and closes a connection that
// has sent GOAWAY and has nothing left once the client had a grace period
// to close it itself.
func (c *h3Conn) watch(ctx context.Context) {
	draining := c.cfg.Draining
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.conn.Context().Done():
			return
		case <-draining:
			draining = nil
			c.sendGoAway()
		case <-c.idle:
			t := time.NewTimer(goAwayGrace)
			select {
			case <-t.C:
				c.conn.CloseWithError(quic.ApplicationErrorCode(h3.ErrCodeNoError), "")
			case <-ctx.Done():
			case <-c.conn.Context().Done():
			}
			t.Stop()
			return
		}
	}
}

// clientReset counts one stream the client reset; past the cap the
// connection is closed with H3_EXCESSIVE_LOAD (Rapid Reset).
func (c *h3Conn) clientReset() {
	c.mu.Lock()
	over := c.flood.Observe(time.Now())
	c.mu.Unlock()
	if over {
		guard.H3ResetFlood.Inc()
		c.connError(h3.ErrCodeExcessiveLoad, "too many stream resets")
	}
}

// uniLoop accepts the client's unidirectional streams.
func (c *h3Conn) uniLoop(ctx context.Context) {
	for {
		rs, err := c.conn.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		c.wg.Go(func() { c.serveUni(rs) })
	}
}

func (c *h3Conn) serveUni(rs *quic.ReceiveStream) {
	defer func() {
		if r := recover(); r != nil {
			c.panicked(r)
		}
		rs.ReleaseStreamCredit()
	}()
	br := bufio.NewReaderSize(rs, 512)
	t, err := fquic.ReadVarint(br)
	if err != nil {
		return
	}
	claim := func(flag *bool) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if *flag {
			return false
		}
		*flag = true
		return true
	}
	switch h3.StreamType(t) {
	case h3.StreamTypeControl:
		// RFC 9114 §6.2.1: "Only one control stream per peer is permitted;
		// receipt of a second stream claiming to be a control stream MUST
		// be treated as a connection error of type H3_STREAM_CREATION_ERROR."
		if !claim(&c.peerCtrl) {
			c.connError(h3.ErrCodeStreamCreationError, "second control stream")
			return
		}
		c.readControl(br)
	case h3.StreamTypePush:
		// RFC 9114 §6.2.2: "Only servers can push; if a server receives a
		// client-initiated push stream, this MUST be treated as a connection
		// error of type H3_STREAM_CREATION_ERROR."
		c.connError(h3.ErrCodeStreamCreationError, "client push stream")
	case h3.StreamTypeQPACKEncoder:
		if !claim(&c.peerEnc) {
			c.connError(h3.ErrCodeStreamCreationError, "second qpack encoder stream")
			return
		}
		c.readQPACKEncoder(br)
	case h3.StreamTypeQPACKDecoder:
		if !claim(&c.peerDec) {
			c.connError(h3.ErrCodeStreamCreationError, "second qpack decoder stream")
			return
		}
		// We never reference our dynamic table (capacity 0), so the
		// client's acknowledgements carry nothing we track: discard them.
		io.Copy(io.Discard, br)
		c.criticalClosed()
	default:
		// RFC 9114 §6.2: unknown stream types: "the recipient MUST either
		// abort reading of the stream or discard incoming data"; "SHOULD
		// use the H3_STREAM_CREATION_ERROR error code".
		rs.CancelRead(quic.StreamErrorCode(h3.ErrCodeStreamCreationError))
	}
}

// criticalClosed handles the end of a control or QPACK stream: unless the
// connection is going away anyway, RFC 9114 §6.2.1 and RFC 9204 §4.2 make
// it a connection error of type H3_CLOSED_CRITICAL_STREAM.
func (c *h3Conn) criticalClosed() {
	if c.conn.Context().Err() != nil {
		return
	}
	c.connError(h3.ErrCodeClosedCriticalStream, "critical stream closed")
}

// readControl reads the client's control stream: SETTINGS first, then
// GOAWAY, MAX_PUSH_ID, CANCEL_PUSH and unknown frames.
func (c *h3Conn) readControl(br *bufio.Reader) {
	first := true
	buf := make([]byte, 0, 64)
	for {
		fh, err := h3.ReadFrameHeader(br)
		if err != nil {
			c.criticalClosed()
			return
		}
		switch {
		case fh.Type.IsReservedH2():
			c.connError(h3.ErrCodeFrameUnexpected, "reserved HTTP/2 frame type")
			return
		case first && fh.Type != h3.FrameTypeSettings:
			// RFC 9114 §6.2.1: "If the first frame of the control stream is
			// any other frame type, this MUST be treated as a connection
			// error of type H3_MISSING_SETTINGS."
			c.connError(h3.ErrCodeMissingSettings, "control stream without SETTINGS")
			return
		}
		switch fh.Type {
		case h3.FrameTypeSettings, h3.FrameTypeGoAway, h3.FrameTypeMaxPushID, h3.FrameTypeCancelPush:
			if fh.Type == h3.FrameTypeSettings && !first {
				// RFC 9114 §7.2.4: "If an endpoint receives a second
				// SETTINGS frame on the control stream, the endpoint MUST
				// respond with a connection error of type
				// H3_FRAME_UNEXPECTED."
				c.connError(h3.ErrCodeFrameUnexpected, "second SETTINGS")
				return
			}
			if fh.Length > h3.MaxControlFramePayload {
				c.connError(h3.ErrCodeExcessiveLoad, "control frame too large")
				return
			}
			buf = buf[:fh.Length]
			if _, err := io.ReadFull(br, buf); err != nil {
				c.criticalClosed()
				return
			}
			var perr error
			switch fh.Type {
			case h3.FrameTypeSettings:
				perr = c.peerSettings(buf)
			case h3.FrameTypeGoAway:
				// A client's GOAWAY carries a push ID; we never push, so it
				// only tells us the client is leaving.
				_, perr = h3.ParseGoAway(buf)
			default:
				if _, n, err := fquic.ParseVarint(buf); err != nil || n != len(buf) {
					perr = h3.ErrFrameMalformed
				}
			}
			if perr != nil {
				var ce *h3.ConnError
				if errors.As(perr, &ce) {
					c.connError(ce.Code, ce.Reason)
				} else {
					c.connError(h3.ErrCodeFrameError, "malformed control frame")
				}
				return
			}
		case h3.FrameTypeData, h3.FrameTypeHeaders, h3.FrameTypePushPromise:
			// RFC 9114 §7.2.1, §7.2.2, §7.2.5: not allowed on the control
			// stream: H3_FRAME_UNEXPECTED.
			c.connError(h3.ErrCodeFrameUnexpected, "request frame on the control stream")
			return
		default:
			// RFC 9114 §9: unknown frame types MUST be ignored.
			if _, err := io.CopyN(io.Discard, br, int64(fh.Length)); err != nil {
				c.criticalClosed()
				return
			}
		}
		first = false
	}
}

// readQPACKEncoder reads the client's QPACK encoder stream. With our table
// capacity at 0, the only legal instruction is Set Dynamic Table Capacity
// to 0 (the byte 0x20); anything else would insert into a table we did not
// allow (RFC 9204 §4.3: a QPACK_ENCODER_STREAM_ERROR).
func (c *h3Conn) readQPACKEncoder(br *bufio.Reader) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			c.criticalClosed()
			return
		}
		if b != 0x20 {
			guard.H3QPACKError.Inc()
			c.connError(h3.ErrCodeQPACKEncoderStreamError, "dynamic table use with capacity 0")
			return
		}
	}
}

// peerSettings reads the client's SETTINGS: what it says of HTTP
// Datagrams decides whether we send it any.
func (c *h3Conn) peerSettings(p []byte) error {
	sf, err := h3.ParseSettings(p)
	if err != nil {
		return err
	}
	ok, err := h3.DatagramSetting(&sf, c.conn.ConnectionState().SupportsDatagrams.Remote)
	if err != nil {
		return err
	}
	if c.dg != nil {
		c.dg.SetPeer(ok)
	}
	return nil
}
