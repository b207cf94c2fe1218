package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Our side of a backend HTTP/2 connection.
const (
	// h2StreamWindow is our receive window per backend stream: the bus
	// budget of a response, so a slow client closes the backend's window
	// instead of growing a buffer.
	h2StreamWindow = bus.DefaultStreamBytes
	// h2ConnWindow is our connection receive window to a backend.
	h2ConnWindow = bus.DefaultConnBytes
	// h2LinkFrames bounds the frames queued on a response link.
	h2LinkFrames = 256
	// h2MaxHeaderList is the response header-list cap we announce.
	h2MaxHeaderList = 64 << 10
)

// errGoAway is the cause of streams a backend's GOAWAY never started.
var errGoAway = errors.New("upstream: backend sent GOAWAY before starting the stream")

// errConnLost is the cause of streams whose backend connection died.
var errConnLost = errors.New("upstream: backend connection lost")

// ErrNoExtendedConnect: a tunnel was asked of an HTTP/2 backend that did
// not announce SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), so it
// would refuse the extended CONNECT.
var ErrNoExtendedConnect = fmt.Errorf("%w: backend does not accept extended CONNECT", ErrBadResponse)

// H2 is the HTTP/2 transport (h2c, or h2 over TLS with ALPN): one
// multiplexed connection per backend carries many client streams, up to
// the backend's SETTINGS_MAX_CONCURRENT_STREAMS; a connection that got a
// GOAWAY takes no new stream and is replaced.
type H2 struct {
	Opts Options
	// Log receives recovered panics of the connections' goroutines.
	Log    zerolog.Logger
	dialer net.Dialer

	mu      sync.Mutex
	clients map[*h2Client]struct{} // every live connection, for Close
	closed  bool
}

// Close closes every backend connection of the transport and waits for
// their goroutines (the gateway's drain calls it last).
func (t *H2) Close() {
	t.mu.Lock()
	t.closed = true
	cs := make([]*h2Client, 0, len(t.clients))
	for c := range t.clients {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		c.close(errConnLost)
		c.wg.Wait()
	}
}

// h2Pool is one backend's HTTP/2 connections.
type h2Pool struct {
	mu    sync.Mutex
	conns []*h2Client
}

// get returns a connection with a stream slot reserved, dialing one when
// none has room.
func (t *H2) get(ctx context.Context, b *route.Backend, o *BackendOpts) (*h2Client, error) {
	p := &o.h2
	p.mu.Lock()
	live := p.conns[:0]
	var pick *h2Client
	for _, c := range p.conns {
		if c.dead() {
			continue
		}
		live = append(live, c)
		if pick == nil && c.reserve() {
			pick = c
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
	p.mu.Unlock()
	if pick != nil {
		return pick, nil
	}
	c, err := t.dial(ctx, b, o)
	if err != nil {
		return nil, err
	}
	c.reserve()
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
	return c, nil
}

func (t *H2) dial(ctx context.Context, b *route.Backend, o *BackendOpts) (*h2Client, error) {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, t.Opts.ConnectTimeout)
	defer cancel()
	nc, err := t.dialer.DialContext(dctx, "tcp", b.Address)
	if err != nil {
		return nil, &route.DialError{Err: err}
	}
	if o.TLS != nil {
		tc := tls.Client(nc, o.TLS)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, &route.DialError{Err: err}
		}
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			tc.Close()
			return nil, &route.DialError{Err: errors.New("upstream: backend did not negotiate ALPN h2")}
		}
		nc = tc
	}
	observeConnect(ctx, b, "h2", start)
	b.ConnOpen()
	c := newH2Client(nc, b, t.Opts, t.Log, o.TLS != nil)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.close(errConnLost)
		return nil, &route.DialError{Err: errConnLost}
	}
	if t.clients == nil {
		t.clients = map[*h2Client]struct{}{}
	}
	t.clients[c] = struct{}{}
	t.mu.Unlock()
	c.onClose = func() {
		t.mu.Lock()
		delete(t.clients, c)
		t.mu.Unlock()
	}
	if err := c.start(); err != nil {
		c.close(err)
		return nil, &route.DialError{Err: err}
	}
	return c, nil
}

// RoundTrip implements Transport.
func (t *H2) RoundTrip(ctx context.Context, b *route.Backend, req *frames.Head, body *bus.Link) (*Response, error) {
	if re := bodyCut(body); re != nil {
		body.Discard(re)
		return nil, re
	}
	if transferCoded(req) {
		body.Discard(ErrCodingUnsupported)
		return nil, ErrCodingUnsupported
	}
	o := opts(b)
	if o == nil {
		body.Discard(ErrBadResponse)
		return nil, ErrBadResponse
	}
	c, err := t.get(ctx, b, o)
	if err != nil {
		body.Discard(err)
		return nil, err
	}
	if req.Protocol != "" {
		if req, err = c.tunnelRequest(ctx, req, t.Opts.HeadTimeout); err != nil {
			c.unreserve()
			body.Discard(err)
			return nil, err
		}
	}
	s, err := c.open(req, body)
	if err != nil {
		body.Discard(err)
		return nil, err
	}
	// The head timeout is the context's own timer: no goroutine per request.
	hctx, cancel := context.WithTimeoutCause(ctx, t.Opts.HeadTimeout, ErrTimeout)
	defer cancel()
	interims := 0
	for {
		f, err := s.resp.Recv(hctx)
		if err != nil {
			s.close(true)
			if errors.Is(err, ErrTimeout) {
				return nil, ErrTimeout
			}
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, s.headErr(err)
		}
		if f.Kind != frames.KindHeaders {
			s.resp.Consumed(&f)
			s.close(true)
			return nil, ErrBadResponse
		}
		if f.Head.Status < 200 {
			if err := relayInterim(ctx, &interims, f.Head); err != nil {
				s.close(true)
				return nil, err
			}
			continue
		}
		h := f.Head
		s.noBody = f.End
		if req.Protocol != "" && h.Status/100 == 2 && !f.End {
			// RFC 8441 §5: a 2xx opens the tunnel; the stream's DATA
			// is the backend's side of it.
			h.Protocol = req.Protocol
			h.ContentLength = -1
		}
		if req.Method == "HEAD" || h.Status == 204 || h.Status == 304 {
			if h.ContentLength < 0 || req.Method != "HEAD" {
				h.ContentLength = 0
			}
		}
		return &Response{Head: h, End: f.End, body: s}, nil
	}
}

// tunnelRequest is req as an extended CONNECT to this backend (RFC 8441
// §4), once its SETTINGS said it takes one.
func (c *h2Client) tunnelRequest(ctx context.Context, req *frames.Head, wait time.Duration) (*frames.Head, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.settings:
	case <-c.done:
		return nil, &route.RefusedError{Err: errConnLost}
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	c.mu.Lock()
	ok := c.connectProtocol
	c.mu.Unlock()
	if !ok {
		return nil, ErrNoExtendedConnect
	}
	return tunnelHead(req), nil
}

// h2BatchBytes bounds the DATA bytes one write cycle takes from the
// streams, so control frames and other streams get a turn.
const h2BatchBytes = 128 << 10

// h2BodyQueue bounds the request-body frames the writer takes off a body
// link ahead of the windows (their bytes still count on the link until
// written).
const h2BodyQueue = 16

// errWriterPanic is the cause of a connection whose writer panicked.
var errWriterPanic = errors.New("upstream: h2 writer panicked")

// h2Client is one backend HTTP/2 connection. readLoop owns the receive
// side. The send side is the engine h2.Sched, under mu, as on the client
// front (stages/encode): the read loop queues control frames and window
// changes, open queues a stream's HEADERS, and each request body's link
// tells the client when it holds frames (bus.Notifier). One writer
// goroutine, running only while something is queued, takes the body frames
// off the links itself, takes a batch from the engine, writes it and
// flushes once, then gives the written frames back.
type h2Client struct {
	conn   net.Conn
	b      *route.Backend
	opts   Options
	log    zerolog.Logger
	scheme string
	codec  *h2.Conn
	w      *h2.Writer // the writer goroutine's
	bw     *h2.BufWriter

	mu        sync.Mutex
	s         *h2.Sched
	streams   map[uint32]*h2ClientStream
	pull      []*h2ClientStream // streams whose body links may hold frames
	items     []h2.Item         // the writer's batch, reused
	running   bool              // a writer goroutine is on
	idle      chan struct{}     // closed when the writer next goes idle (waitIdle)
	active    int
	maxActive int
	goingAway bool
	closed    bool
	cause     error
	idleTimer *time.Timer
	onClose   func()
	// settings is closed once the backend's first SETTINGS is read;
	// connectProtocol is what it said of extended CONNECT (under mu).
	settings        chan struct{}
	connectProtocol bool

	wg   sync.WaitGroup
	done chan struct{}
}

func newH2Client(nc net.Conn, b *route.Backend, o Options, log zerolog.Logger, tlsOn bool) *h2Client {
	c := &h2Client{
		conn:      nc,
		b:         b,
		opts:      o,
		log:       log,
		scheme:    "http",
		s:         h2.NewSched(h2ConnWindow, true),
		streams:   map[uint32]*h2ClientStream{},
		maxActive: 100, // until the backend's SETTINGS say otherwise
		done:      make(chan struct{}),
		settings:  make(chan struct{}),
	}
	if tlsOn {
		c.scheme = "https"
	}
	local := h2.Settings{
		HeaderTableSize:      h2.DefaultHeaderTableSize,
		EnablePush:           false,
		MaxConcurrentStreams: 0,
		InitialWindowSize:    h2StreamWindow,
		MaxFrameSize:         h2.DefaultMaxFrameSize,
		MaxHeaderListSize:    h2MaxHeaderList,
	}
	c.bw = h2.NewBufWriter(nc)
	c.codec = h2.NewConn(h2.RoleClient, c.bw, bufio.NewReaderSize(nc, 32<<10), local)
	c.w = h2.NewWriter(c.codec)
	return c
}

// start writes the preface and our settings, before any writer runs, and
// starts the read loop.
func (c *h2Client) start() error {
	c.bw.WriteString(h2.Preface)
	err := c.w.WriteSettings(c.codec.Local)
	if err == nil {
		err = c.w.Framer().WriteWindowUpdate(0, h2ConnWindow-h2.InitialWindowSize)
	}
	if err == nil {
		c.setWriteDeadline()
		err = c.bw.Flush()
	}
	if err != nil {
		return err
	}
	c.codec.ConnWindow().Credit(h2ConnWindow - h2.InitialWindowSize)
	c.wg.Go(c.readLoop)
	return nil
}

func (c *h2Client) setWriteDeadline() {
	if c.opts.BodyTimeout > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(c.opts.BodyTimeout))
	}
}

func (c *h2Client) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.goingAway && c.active == 0
}

// reserve takes a stream slot if the connection has one.
func (c *h2Client) reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.goingAway || c.active >= c.maxActive || c.codec.NextLocal() > h2.MaxStreamID {
		return false
	}
	c.active++
	if c.idleTimer != nil {
		c.idleTimer.Stop()
		c.idleTimer = nil
	}
	return true
}

// unreserve gives a slot back; an idle connection closes after the idle
// timeout, and at once once it is going away.
func (c *h2Client) unreserve() {
	c.mu.Lock()
	c.active--
	if c.active > 0 || c.closed {
		c.mu.Unlock()
		return
	}
	if c.goingAway {
		c.mu.Unlock()
		c.close(nil)
		return
	}
	defer c.mu.Unlock()
	if c.opts.IdleTimeout > 0 {
		c.idleTimer = time.AfterFunc(c.opts.IdleTimeout, func() {
			c.mu.Lock()
			idle := c.active == 0
			c.mu.Unlock()
			if idle {
				c.close(nil)
			}
		})
	}
}

// close tears the connection down, failing every stream with cause; a
// stream none of whose frames went out fails as refused (safe to retry
// elsewhere).
func (c *h2Client) close(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if cause == nil {
		cause = errConnLost
	}
	c.cause = cause
	type failed struct {
		s       *h2ClientStream
		started bool
	}
	streams := make([]failed, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, failed{s, s.ss.Started()})
	}
	if !c.running {
		// Otherwise the writer drops everything once its batch is out:
		// the frames it is writing from stay held until then.
		c.s.DropAll()
	}
	c.pull = nil
	close(c.done)
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	for _, f := range streams {
		if f.started {
			f.s.resp.Close(cause)
		} else {
			f.s.resp.Close(&route.RefusedError{Err: cause})
		}
	}
	c.conn.Close()
	c.b.ConnClosed()
	if c.onClose != nil {
		c.onClose()
	}
}

// kickLocked starts the writer goroutine if it is not running.
func (c *h2Client) kickLocked() {
	if !c.running && !c.closed {
		c.running = true
		c.wg.Go(c.run)
	}
}

// queue queues a control frame.
func (c *h2Client) queue(ctl h2.Ctrl) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Control(ctl)
	c.kickLocked()
}

// waitIdle waits, at most d, for the writer to have written what is queued.
func (c *h2Client) waitIdle(d time.Duration) {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	ch := c.idle
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// run is the writer goroutine: batches until nothing is left to write.
func (c *h2Client) run() {
	locked := false
	defer func() {
		if r := recover(); r != nil {
			// The writer handles what the backend's frames made us queue:
			// a panic closes this connection only.
			stages.Panicked(c.log, r, c.conn)
			if !locked {
				c.mu.Lock()
			}
			c.stopLocked()
			c.mu.Unlock()
			c.close(errWriterPanic)
		}
	}()
	c.mu.Lock()
	locked = true
	var err error
	for !c.closed {
		c.pullLocked()
		items := c.s.Next(c.items[:0], h2BatchBytes, time.Now())
		if len(items) == 0 {
			break
		}
		c.mu.Unlock()
		locked = false
		c.setWriteDeadline()
		err = c.write(items)
		if err == nil {
			err = c.bw.Flush()
		}
		c.mu.Lock()
		locked = true
		c.s.Written(items)
		clear(items)
		c.items = items[:0]
		if err != nil {
			break
		}
	}
	c.stopLocked()
	c.mu.Unlock()
	locked = false
	if err != nil {
		c.close(err)
	}
}

// stopLocked ends a writer run: after a close, the writer drops what is
// left (close left it to the writer while a batch was out).
func (c *h2Client) stopLocked() {
	if c.closed {
		c.s.DropAll()
	}
	c.running = false
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

func (c *h2Client) write(items []h2.Item) error {
	fr := c.w.Framer()
	for i := range items {
		it := &items[i]
		var err error
		switch {
		case it.Stream == nil:
			err = c.w.WriteCtrl(&it.Ctrl)
		case it.Out.Kind == frames.KindData:
			err = fr.WriteData(it.Stream.ID, it.End, it.Data)
		case it.Out.Kind == frames.KindHeaders:
			err = c.w.WriteBlock(it.Stream.ID, c.w.EncodeRequest(it.Out.Head, c.scheme), it.Out.End)
		case it.Out.Kind == frames.KindTrailers:
			err = c.w.WriteBlock(it.Stream.ID, c.w.EncodeTrailers(it.Out.Head.Fields), true)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pullLocked takes the frames the ready body links hold into the engine,
// up to h2BodyQueue per stream.
func (c *h2Client) pullLocked() {
	keep := c.pull[:0]
	for _, s := range c.pull {
		if c.takeBody(s) {
			keep = append(keep, s)
		} else {
			s.pulling = false
		}
	}
	clear(c.pull[len(keep):])
	c.pull = keep
}

// takeBody moves s's ready body frames into the engine; true means it
// stopped for room, with frames possibly left on the link. A body cut
// short (a Reset, or the link closed without an end) resets the stream
// with CANCEL: the backend never sees it complete.
func (c *h2Client) takeBody(s *h2ClientStream) bool {
	for !s.bodyOver {
		if s.ss.Queued() >= h2BodyQueue {
			return true
		}
		// The cause is read before the frame: a link closed by then holds
		// all its frames already, so an empty one is over.
		cause := s.body.Cause()
		f, ok := s.body.TryRecv()
		if !ok {
			if cause != nil {
				s.bodyOver = true
				c.s.Reset(s.id, h2.ErrCodeCancel)
				s.resp.Close(cause) // the exchange cannot complete: end the wait
			}
			return false
		}
		switch f.Kind {
		case frames.KindData, frames.KindTrailers:
			end := f.End || f.Kind == frames.KindTrailers
			if !c.s.Push(s.ss, h2.Out{Frame: f}) {
				s.body.Consumed(&f)
			}
			if end {
				s.bodyOver = true
			}
		case frames.KindReset:
			s.body.Consumed(&f)
			s.bodyOver = true
			c.s.Reset(s.id, h2.ErrCodeCancel)
			// The client's body failed: end the wait for the backend's
			// head at once, with the client's cause (400/408/413), rather
			// than at the head timeout.
			s.resp.Close(&frames.ResetError{Code: f.Code})
		default:
			s.body.Consumed(&f)
		}
	}
	return false
}

// readLoop reads the backend's frames and routes them to streams.
func (c *h2Client) readLoop() {
	defer func() {
		if r := recover(); r != nil {
			// The backend's bytes are input too: a panic closes this
			// connection only.
			stages.Panicked(c.log, r, c.conn)
			c.close(errConnLost)
		}
	}()
	for {
		ev, err := c.codec.Next()
		if err != nil {
			var se *h2.StreamError
			var ce *h2.ConnError
			switch {
			case errors.As(err, &se):
				c.credit(nil, ev.Flow)
				c.queueReset(se.ID, se.Code)
				if s := c.stream(se.ID); s != nil {
					s.resp.Close(ErrBadResponse)
				}
				continue
			case errors.As(err, &ce):
				c.queue(h2.Ctrl{Kind: h2.CtrlGoAway, Code: ce.Code, Debug: ce.Reason})
				c.waitIdle(time.Second)
				c.close(ErrBadResponse)
				return
			}
			c.close(errConnLost)
			return
		}
		c.dispatch(ev)
	}
}

// queueReset queues RST_STREAM for id and drops what the stream still had
// to send.
func (c *h2Client) queueReset(id uint32, code h2.ErrCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.s.Reset(id, code)
	c.kickLocked()
}

func (c *h2Client) stream(id uint32) *h2ClientStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// credit returns n received bytes to our receive windows: the
// connection's, and stream s's (nil: none) while the backend may still
// send on it. WINDOW_UPDATE goes out once a quarter of a window is owed.
func (c *h2Client) credit(s *h2ClientStream, n int) {
	if n <= 0 {
		return
	}
	c.codec.ConnWindow().Credit(n)
	var ss *h2.SendStream
	open := false
	if s != nil {
		s.cs.Recv.Credit(n)
		ss, open = s.ss, c.codec.RemoteOpen(s.id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && c.s.Credit(ss, n, open) {
		c.kickLocked()
	}
}

func (c *h2Client) dispatch(ev h2.Event) {
	switch ev.Type {
	case h2.EvHeaders:
		if s := c.stream(ev.Stream); s != nil {
			if s.resp.Send(context.Background(), frames.HeadersFrame(ev.Head, ev.End)) == nil && ev.End {
				s.resp.Close(io.EOF)
			}
		}
	case h2.EvData:
		s := c.stream(ev.Stream)
		n := len(ev.Data)
		if s == nil {
			c.credit(nil, ev.Flow)
			return
		}
		c.credit(s, ev.Flow-n) // padding never reaches the link
		data := ev.Data
		for len(data) > 0 || ev.End {
			k := min(len(data), frames.MaxDataChunk)
			last := k == len(data)
			err := s.resp.Send(context.Background(), frames.CopyData(data[:k], ev.End && last))
			data = data[k:]
			if err != nil {
				c.credit(nil, k+len(data)) // nothing will consume these
				break
			}
			if last {
				break
			}
		}
		if ev.End {
			s.resp.Close(io.EOF)
		}
	case h2.EvTrailers:
		if s := c.stream(ev.Stream); s != nil {
			s.resp.Send(context.Background(), frames.TrailersFrame(ev.Head.Fields))
			s.resp.Close(io.EOF)
		}
	case h2.EvReset:
		if s := c.stream(ev.Stream); s != nil {
			c.mu.Lock()
			if !c.closed {
				c.s.Drop(s.ss) // nothing more of ours goes out, and no frame
			}
			c.mu.Unlock()
			if ev.Code == h2.ErrCodeRefusedStream {
				// RFC 9113 §8.7: REFUSED_STREAM means nothing was
				// processed: the request is safe to retry.
				s.resp.Close(&route.RefusedError{Err: errors.New("upstream: REFUSED_STREAM")})
			} else {
				s.resp.Close(&frames.ResetError{Code: h2.ToNeutral(ev.Code)})
			}
		}
	case h2.EvWindowUpdate:
		c.mu.Lock()
		ok := c.s.WindowUpdate(ev.Stream, ev.Incr)
		c.kickLocked()
		c.mu.Unlock()
		if !ok {
			c.close(ErrBadResponse)
		}
	case h2.EvSettings:
		c.mu.Lock()
		c.maxActive = int(min(ev.Settings.MaxConcurrentStreams, 1000))
		c.connectProtocol = ev.Settings.EnableConnectProtocol
		select {
		case <-c.settings:
		default:
			close(c.settings)
		}
		ok := c.s.PeerSettings(ev.Settings, ev.InitialDelta)
		c.kickLocked()
		c.mu.Unlock()
		if !ok {
			c.close(ErrBadResponse)
		}
	case h2.EvPing:
		c.queue(h2.Ctrl{Kind: h2.CtrlPingAck, Ping: ev.Ping})
	case h2.EvGoAway:
		c.mu.Lock()
		c.goingAway = true
		var refused []*h2ClientStream
		for id, s := range c.streams {
			if id > ev.Last {
				refused = append(refused, s)
			}
		}
		idle := c.active == 0
		c.mu.Unlock()
		for _, s := range refused {
			// RFC 9113 §6.8: streams above the last id were not processed.
			s.resp.Close(&route.RefusedError{Err: errGoAway})
		}
		if idle {
			c.close(nil)
		}
	case h2.EvIgnored, h2.EvUnknown:
		c.credit(nil, ev.Flow)
	}
}

// h2ClientStream is one request on a backend connection: the engine's
// owner of its send side (h2.Owner) and the consumer of its body link
// (bus.Notifier).
type h2ClientStream struct {
	c    *h2Client
	id   uint32
	cs   *h2.Stream
	ss   *h2.SendStream
	resp *bus.Link
	body *bus.Link // the request body; nil once detached or for none

	// Under c.mu.
	pulling  bool // in c.pull
	bodyOver bool // the body's last frame was taken, or it was cut

	// The response consumer's.
	noBody bool
	closed bool
}

// ReleaseOut implements h2.Owner: a body frame written or dropped goes
// back to the body link (its credit reopens the client's window); the
// head was never on it.
func (s *h2ClientStream) ReleaseOut(o *h2.Out) {
	if o.Local || s.body == nil {
		o.Release()
		return
	}
	s.body.Consumed(&o.Frame)
}

// SendDone implements h2.Owner: the request is out (or dropped), so the
// body link is done with. The notifier goes first: Discard closes the
// link, and its readiness call would take c.mu again.
func (s *h2ClientStream) SendDone() {
	if s.body == nil {
		return
	}
	s.bodyOver = true
	s.body.Notify(nil)
	s.body.Discard(io.EOF)
}

// LinkReady implements bus.Notifier: the request body link has frames or
// was closed; the writer takes them from there.
func (s *h2ClientStream) LinkReady() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.pulling && !s.bodyOver && !c.closed {
		s.pulling = true
		c.pull = append(c.pull, s)
		c.kickLocked()
	}
}

// open starts a stream: its HEADERS are queued now, its body is taken off
// the body link as it comes.
func (c *h2Client) open(req *frames.Head, body *bus.Link) (*h2ClientStream, error) {
	hasBody := req.ContentLength != 0
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.unreserve()
		return nil, &route.RefusedError{Err: errConnLost}
	}
	cs := c.codec.Open(req.Method == "HEAD")
	if cs == nil {
		c.mu.Unlock()
		c.unreserve()
		return nil, &route.RefusedError{Err: errGoAway}
	}
	s := &h2ClientStream{c: c, id: cs.ID, cs: cs}
	s.resp = bus.NewLink(h2StreamWindow, nil, bus.WithFrames(h2LinkFrames), bus.WithCredit(func(n int) { c.credit(s, n) }))
	// RFC 9113 §5.1.1: stream ids must rise in the order HEADERS go out:
	// the id is taken and the HEADERS queued under one lock, and the
	// engine writes heads in the order their streams were queued.
	s.ss = c.s.Open(s.id, s, h2StreamWindow)
	c.streams[s.id] = s
	c.s.Push(s.ss, h2.Out{Frame: frames.HeadersFrame(req, !hasBody), Local: true})
	if hasBody {
		s.body = body
	}
	c.kickLocked()
	c.mu.Unlock()
	if hasBody {
		body.Notify(s)
	} else {
		body.Discard(io.EOF)
	}
	return s, nil
}

// headErr types a failure before the response head.
func (s *h2ClientStream) headErr(err error) error {
	var re *route.RefusedError
	if errors.As(err, &re) {
		return re
	}
	var rs *frames.ResetError
	if errors.As(err, &rs) {
		return rs
	}
	return ErrBadResponse
}

// Next implements BodyReader: the link's credit is returned as each frame
// is handed on, so the backend's window reopens as the client drains.
func (s *h2ClientStream) Next(ctx context.Context) (frames.Frame, error) {
	if s.noBody {
		s.noBody = false
		s.closed = true
		return frames.EndFrame(), nil
	}
	f, err := s.resp.Recv(ctx)
	if err != nil {
		if bus.IsCleanEnd(err) {
			s.closed = true
			return frames.EndFrame(), nil
		}
		if ctx.Err() != nil {
			return frames.Frame{}, context.Cause(ctx)
		}
		return frames.Frame{}, err
	}
	s.resp.Release(f.Len())
	if f.End {
		s.closed = true
	}
	return f, nil
}

// Close implements BodyReader.
func (s *h2ClientStream) Close(abort bool) { s.close(abort) }

// close ends the exchange: a stream with either side still open is reset
// with CANCEL (the backend stops sending, and never sees a body that did
// not end as complete); one none of whose frames went out just goes.
func (s *h2ClientStream) close(abort bool) {
	c := s.c
	c.mu.Lock()
	if !c.closed {
		if !s.ss.Finished() || c.codec.RemoteOpen(s.id) {
			c.s.Reset(s.id, h2.ErrCodeCancel)
			c.kickLocked()
		}
		c.s.Close(s.ss)
	}
	delete(c.streams, s.id)
	c.mu.Unlock()
	s.resp.Discard(io.EOF)
	c.codec.Forget(s.id)
	c.unreserve()
}
