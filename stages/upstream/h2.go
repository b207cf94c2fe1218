package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
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

// H2 is the HTTP/2 transport (h2c, or h2 over TLS with ALPN): one
// multiplexed connection per backend carries many client streams, up to
// the backend's SETTINGS_MAX_CONCURRENT_STREAMS; a connection that got a
// GOAWAY takes no new stream and is replaced.
type H2 struct {
	Opts   Options
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
	b.ConnOpen()
	c := newH2Client(nc, b, t.Opts, o.TLS != nil)
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
		if req.Method == "HEAD" || h.Status == 204 || h.Status == 304 {
			if h.ContentLength < 0 || req.Method != "HEAD" {
				h.ContentLength = 0
			}
		}
		return &Response{Head: h, End: f.End, body: s}, nil
	}
}

// h2Client is one backend HTTP/2 connection. readLoop owns the receive
// side; writes (streams' HEADERS and DATA, control frames) take wmu, and
// control frames owed from callbacks go through ctrlLoop so no callback
// ever blocks on the socket.
type h2Client struct {
	conn   net.Conn
	b      *route.Backend
	opts   Options
	scheme string
	codec  *h2.Conn
	w      *h2.Writer
	bw     *bufio.Writer

	wmu sync.Mutex // the write side

	mu        sync.Mutex
	streams   map[uint32]*h2ClientStream
	active    int
	maxActive int
	// maxFrame is the peer's SETTINGS_MAX_FRAME_SIZE, read by the body
	// senders under mu (the Writer's copy belongs to the write loop).
	maxFrame  int
	connSend  h2.SendWindow
	initial   int64
	goingAway bool
	closed    bool
	cause     error
	sendWake  chan struct{} // closed and replaced when windows grow
	ctrl      []func(*h2.Writer) error
	ctrlWake  chan struct{}
	idleTimer *time.Timer
	connDebt  int
	onClose   func()

	wg   sync.WaitGroup
	done chan struct{}
}

func newH2Client(nc net.Conn, b *route.Backend, o Options, tlsOn bool) *h2Client {
	c := &h2Client{
		conn:      nc,
		b:         b,
		opts:      o,
		scheme:    "http",
		streams:   map[uint32]*h2ClientStream{},
		maxActive: 100, // until the backend's SETTINGS say otherwise
		maxFrame:  h2.DefaultMaxFrameSize,
		connSend:  h2.InitialWindowSize,
		initial:   h2.InitialWindowSize,
		sendWake:  make(chan struct{}),
		ctrlWake:  make(chan struct{}, 1),
		done:      make(chan struct{}),
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
	c.bw = bufio.NewWriterSize(nc, 32<<10)
	c.codec = h2.NewConn(h2.RoleClient, c.bw, bufio.NewReaderSize(nc, 32<<10), local)
	c.w = h2.NewWriter(c.codec)
	return c
}

// start writes the preface and our settings and starts the loops.
func (c *h2Client) start() error {
	c.wmu.Lock()
	c.bw.WriteString(h2.Preface)
	err := c.w.WriteSettings(c.codec.Local)
	if err == nil {
		err = c.w.Framer().WriteWindowUpdate(0, h2ConnWindow-h2.InitialWindowSize)
	}
	if err == nil {
		err = c.flushLocked()
	}
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	c.codec.ConnWindow().Credit(h2ConnWindow - h2.InitialWindowSize)
	c.wg.Go(c.readLoop)
	c.wg.Go(c.ctrlLoop)
	return nil
}

func (c *h2Client) flushLocked() error {
	if c.opts.BodyTimeout > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(c.opts.BodyTimeout))
	}
	return c.bw.Flush()
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

// close tears the connection down, failing every stream with cause.
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
	streams := make([]*h2ClientStream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	close(c.sendWake)
	close(c.done)
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	for _, s := range streams {
		s.resp.Close(cause)
	}
	c.conn.Close()
	c.b.ConnClosed()
	if c.onClose != nil {
		c.onClose()
	}
}

// queueCtrl queues a control frame for ctrlLoop.
func (c *h2Client) queueCtrl(fn func(*h2.Writer) error) {
	c.mu.Lock()
	c.ctrl = append(c.ctrl, fn)
	c.mu.Unlock()
	select {
	case c.ctrlWake <- struct{}{}:
	default:
	}
}

// ctrlLoop writes queued control frames (ACKs, WINDOW_UPDATE, RST_STREAM).
func (c *h2Client) ctrlLoop() {
	for {
		select {
		case <-c.done:
			return
		case <-c.ctrlWake:
		}
		c.mu.Lock()
		q := c.ctrl
		c.ctrl = nil
		c.mu.Unlock()
		if len(q) == 0 {
			continue
		}
		c.wmu.Lock()
		var err error
		for _, fn := range q {
			if err = fn(c.w); err != nil {
				break
			}
		}
		if err == nil {
			err = c.flushLocked()
		}
		c.wmu.Unlock()
		if err != nil {
			c.close(err)
			return
		}
	}
}

// readLoop reads the backend's frames and routes them to streams.
func (c *h2Client) readLoop() {
	for {
		ev, err := c.codec.Next()
		if err != nil {
			var se *h2.StreamError
			var ce *h2.ConnError
			switch {
			case errors.As(err, &se):
				if ev.Flow > 0 {
					c.creditConn(ev.Flow)
				}
				id, code := se.ID, se.Code
				c.queueCtrl(func(w *h2.Writer) error { return w.Framer().WriteRSTStream(id, http2Code(code)) })
				if s := c.stream(id); s != nil {
					s.resp.Close(ErrBadResponse)
				}
				continue
			case errors.As(err, &ce):
				code, reason := ce.Code, ce.Reason
				c.wmu.Lock()
				c.w.Framer().WriteGoAway(0, http2Code(code), []byte(reason))
				c.flushLocked()
				c.wmu.Unlock()
				c.close(ErrBadResponse)
				return
			}
			c.close(errConnLost)
			return
		}
		c.dispatch(ev)
	}
}

func (c *h2Client) stream(id uint32) *h2ClientStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

func (c *h2Client) creditConn(n int) {
	c.codec.ConnWindow().Credit(n)
	c.mu.Lock()
	c.connDebt += n
	debt := 0
	if c.connDebt >= h2ConnWindow/4 {
		debt, c.connDebt = c.connDebt, 0
	}
	c.mu.Unlock()
	if debt > 0 {
		c.queueCtrl(func(w *h2.Writer) error { return w.Framer().WriteWindowUpdate(0, uint32(debt)) })
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
		if pad := ev.Flow - n; pad > 0 || s == nil {
			if s == nil {
				pad = ev.Flow
			}
			c.creditConn(pad)
			if s != nil {
				s.credit(pad)
			}
		}
		if s == nil {
			return
		}
		data := ev.Data
		for len(data) > 0 || ev.End {
			k := min(len(data), frames.MaxDataChunk)
			last := k == len(data)
			err := s.resp.Send(context.Background(), frames.CopyData(data[:k], ev.End && last))
			data = data[k:]
			if err != nil {
				c.creditConn(k + len(data))
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
		ok := true
		if ev.Stream == 0 {
			ok = c.connSend.Add(int64(ev.Incr))
		} else if s := c.streams[ev.Stream]; s != nil {
			ok = s.send.Add(int64(ev.Incr))
		}
		c.wakeSendersLocked()
		c.mu.Unlock()
		if !ok {
			c.close(ErrBadResponse)
		}
	case h2.EvSettings:
		c.mu.Lock()
		c.maxActive = int(min(ev.Settings.MaxConcurrentStreams, 1000))
		c.maxFrame = int(ev.Settings.MaxFrameSize)
		c.initial = int64(ev.Settings.InitialWindowSize)
		for _, s := range c.streams {
			s.send.Add(ev.InitialDelta)
		}
		c.wakeSendersLocked()
		c.mu.Unlock()
		set := ev.Settings
		c.queueCtrl(func(w *h2.Writer) error {
			w.ApplyPeer(set)
			return w.Framer().WriteSettingsAck()
		})
	case h2.EvPing:
		data := ev.Ping
		c.queueCtrl(func(w *h2.Writer) error { return w.Framer().WritePing(true, data) })
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
		if ev.Flow > 0 {
			c.creditConn(ev.Flow)
		}
	}
}

func (c *h2Client) wakeSendersLocked() {
	if c.closed {
		return
	}
	close(c.sendWake)
	c.sendWake = make(chan struct{})
}

// h2ClientStream is one request on a backend connection.
type h2ClientStream struct {
	c       *h2Client
	id      uint32
	cs      *h2.Stream
	resp    *bus.Link
	send    h2.SendWindow
	noBody  bool
	debt    int
	closed  bool
	pumpWG  sync.WaitGroup
	pumpErr error
	cancel  context.CancelFunc
}

func (s *h2ClientStream) credit(n int) {
	c := s.c
	s.cs.Recv.Credit(n)
	c.mu.Lock()
	s.debt += n
	debt := 0
	if s.debt >= h2StreamWindow/4 {
		debt, s.debt = s.debt, 0
	}
	c.mu.Unlock()
	if debt > 0 && c.codec.RemoteOpen(s.id) {
		id := s.id
		c.queueCtrl(func(w *h2.Writer) error { return w.Framer().WriteWindowUpdate(id, uint32(debt)) })
	}
}

// open starts a stream: HEADERS now, the body from a pump goroutine.
func (c *h2Client) open(req *frames.Head, body *bus.Link) (*h2ClientStream, error) {
	hasBody := req.ContentLength != 0
	c.wmu.Lock()
	cs := c.codec.Open(req.Method == "HEAD")
	if cs == nil {
		c.wmu.Unlock()
		c.unreserve()
		return nil, &route.RefusedError{Err: errGoAway}
	}
	s := &h2ClientStream{c: c, id: cs.ID, cs: cs}
	s.resp = bus.NewLink(h2StreamWindow, nil, bus.WithFrames(h2LinkFrames), bus.WithCredit(func(n int) {
		c.creditConn(n)
		s.credit(n)
	}))
	c.mu.Lock()
	closed := c.closed
	if !closed {
		s.send = h2.SendWindow(c.initial)
		c.streams[s.id] = s
	}
	c.mu.Unlock()
	if closed {
		c.wmu.Unlock()
		c.unreserve()
		return nil, &route.RefusedError{Err: errConnLost}
	}
	// RFC 9113 §5.1.1: stream ids must rise in the order HEADERS go out,
	// so the id is taken and the HEADERS written under the same lock.
	err := c.w.WriteBlock(s.id, c.w.EncodeRequest(req, c.scheme), !hasBody)
	if err == nil {
		err = c.flushLocked()
	}
	c.wmu.Unlock()
	if err != nil {
		c.close(err)
		s.close(true)
		return nil, &route.DialError{Err: err}
	}
	if !hasBody {
		body.Discard(io.EOF)
		return s, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.pumpWG.Go(func() { s.pumpErr = s.copyToBackend(ctx, body) })
	return s, nil
}

// copyToBackend streams the request body as DATA within the backend's
// windows. A Reset (the client's body was cut) becomes RST_STREAM(CANCEL):
// the backend never sees the body complete.
func (s *h2ClientStream) copyToBackend(ctx context.Context, body *bus.Link) error {
	defer body.Discard(io.EOF)
	c := s.c
	for {
		f, err := body.Recv(ctx)
		if err != nil {
			s.reset(h2.ErrCodeCancel)
			return err
		}
		switch f.Kind {
		case frames.KindData:
			if err := s.writeData(ctx, f.Data, f.End); err != nil {
				body.Consumed(&f)
				return err
			}
			end := f.End
			body.Consumed(&f)
			if end {
				return nil
			}
		case frames.KindTrailers:
			c.wmu.Lock()
			err := c.w.WriteBlock(s.id, c.w.EncodeTrailers(f.Head.Fields), true)
			if err == nil {
				err = c.flushLocked()
			}
			c.wmu.Unlock()
			return err
		case frames.KindReset:
			s.reset(h2.ErrCodeCancel)
			// The client's body failed: end the wait for the backend's head
			// at once, with the client's cause (400/408/413), rather than
			// at the head timeout.
			cause := &frames.ResetError{Code: f.Code}
			s.resp.Close(cause)
			return cause
		}
	}
}

// writeData writes p within the stream and connection send windows.
func (s *h2ClientStream) writeData(ctx context.Context, p []byte, end bool) error {
	c := s.c
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return errConnLost
		}
		n := min(len(p), int(s.send), int(c.connSend), c.maxFrame)
		if n <= 0 && len(p) > 0 {
			wake := c.sendWake
			c.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		s.send -= h2.SendWindow(n)
		c.connSend -= h2.SendWindow(n)
		c.mu.Unlock()
		last := n == len(p)
		c.wmu.Lock()
		err := c.w.Framer().WriteData(s.id, end && last, p[:n])
		if err == nil {
			err = c.flushLocked()
		}
		c.wmu.Unlock()
		if err != nil {
			c.close(err)
			return err
		}
		p = p[n:]
		if last {
			return nil
		}
	}
}

func (s *h2ClientStream) reset(code h2.ErrCode) {
	c := s.c
	id := s.id
	if c.codec.RemoteOpen(id) {
		c.queueCtrl(func(w *h2.Writer) error { return w.Framer().WriteRSTStream(id, http2Code(code)) })
	}
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

// Close implements BodyReader: a stream not ended cleanly is reset.
func (s *h2ClientStream) Close(abort bool) { s.close(abort) }

func (s *h2ClientStream) close(abort bool) {
	c := s.c
	if abort || !s.closed {
		s.reset(h2.ErrCodeCancel)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.pumpWG.Wait()
	s.resp.Discard(io.EOF)
	c.codec.Forget(s.id)
	c.mu.Lock()
	delete(c.streams, s.id)
	c.mu.Unlock()
	c.unreserve()
}

func http2Code(c h2.ErrCode) http2.ErrCode { return http2.ErrCode(c) }
