package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
	fquic "github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// H3 is the HTTP/3 transport: our own frames/h3 codec over quic-go
// streams, one multiplexed QUIC connection per backend, dialled on first
// use and replaced when it is lost or goes away. A request it never
// started on a dead connection is sent on a fresh one. As on the other two
// protocols, no net/http type is on the data path: heads are encoded from
// and decoded into frames.Head, bodies move as bus frames, and timeouts
// are stream deadlines.
type H3 struct {
	Opts Options
	// MaxHeaderBytes caps a response's field section (0: 64 KiB).
	MaxHeaderBytes int
	// StreamWindow and ConnWindow are the QUIC receive windows towards the
	// backend; they follow the bus budgets.
	StreamWindow, ConnWindow uint64

	conns  sync.Map // *route.Backend → *h3Slot
	closed atomic.Bool
}

// h3Slot holds one backend's current connection; mu serialises dialling.
type h3Slot struct {
	mu sync.Mutex
	cc *h3Conn
}

// h3Conn is one QUIC connection to a backend with its HTTP/3 control
// state: our control stream, and whether the server sent GOAWAY.
type h3Conn struct {
	qc        *quic.Conn
	ctrl      *quic.SendStream
	goingAway atomic.Bool
	limits    h3.Limits
	// settings is closed once the server's SETTINGS is read;
	// connectProtocol is what it said of extended CONNECT (RFC 9220).
	settings        chan struct{}
	connectProtocol atomic.Bool
	// dg carries the connection's HTTP Datagrams (RFC 9297); its Peer is
	// what the server's SETTINGS said of them.
	dg *stages.H3DatagramMux
}

func (c *h3Conn) usable() bool {
	return c != nil && c.qc.Context().Err() == nil && !c.goingAway.Load()
}

// maxH3Attempts bounds how often a request that never started is moved to
// a fresh connection.
const maxH3Attempts = 2

// h3ReadBuf is the read buffer of a response stream: a HEADERS frame of a
// typical response, or a DATA frame's header and the start of its payload.
const h3ReadBuf = 4 << 10

func (t *H3) slot(b *route.Backend) *h3Slot {
	if s, ok := t.conns.Load(b); ok {
		return s.(*h3Slot)
	}
	s, _ := t.conns.LoadOrStore(b, &h3Slot{})
	return s.(*h3Slot)
}

func closeConn(qc *quic.Conn, code h3.ErrCode, reason string) {
	qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// conn returns a live connection to b, dialling when there is none or when
// stale is the current one (it just failed to start a request).
func (t *H3) conn(ctx context.Context, b *route.Backend, stale *h3Conn) (*h3Conn, error) {
	s := t.slot(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc != nil && s.cc != stale && s.cc.usable() {
		return s.cc, nil
	}
	if s.cc != nil {
		if !s.cc.goingAway.Load() {
			closeConn(s.cc.qc, h3.ErrCodeNoError, "")
		}
		// A connection going away finishes its streams on its own; the
		// server closes it when they are done.
		s.cc = nil
		b.ConnClosed()
	}
	if t.closed.Load() {
		return nil, &route.DialError{Err: errors.New("upstream: h3 transport closed")}
	}
	var tlsCfg *tls.Config
	if o := opts(b); o != nil && o.TLS != nil {
		tlsCfg = o.TLS.Clone()
	} else {
		host := b.Address
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = strings.Trim(host[:i], "[]")
		}
		tlsCfg = &tls.Config{ServerName: host}
	}
	tlsCfg.MinVersion = tls.VersionTLS13
	tlsCfg.NextProtos = []string{"h3"}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, t.Opts.ConnectTimeout)
	defer cancel()
	qc, err := quic.DialAddr(dctx, b.Address, tlsCfg, &quic.Config{
		HandshakeIdleTimeout:           t.Opts.ConnectTimeout,
		MaxIdleTimeout:                 t.Opts.IdleTimeout,
		InitialStreamReceiveWindow:     t.StreamWindow,
		MaxStreamReceiveWindow:         t.StreamWindow,
		InitialConnectionReceiveWindow: t.ConnWindow,
		MaxConnectionReceiveWindow:     t.ConnWindow,
		// A server opens no request streams (RFC 9114 §6.1), and only a
		// few unidirectional ones: control and the two QPACK streams.
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: 8,
		// HTTP Datagrams need QUIC datagrams (RFC 9297 §2.1.1).
		EnableDatagrams: true,
	})
	if err != nil {
		return nil, &route.DialError{Err: err}
	}
	observeConnect(ctx, b, "h3", start)
	c := &h3Conn{qc: qc, limits: h3.Limits{MaxSize: t.maxHeader(), Underscore: frames.UnderscoreAllow}, settings: make(chan struct{})}
	c.dg = stages.NewH3DatagramMux(qc, false, 0)
	if err := c.openControl(); err != nil {
		closeConn(qc, h3.ErrCodeInternalError, "")
		return nil, &route.DialError{Err: err}
	}
	go c.acceptUni()
	go func() {
		var ce *h3.ConnError
		if err := c.dg.Run(qc.Context()); errors.As(err, &ce) {
			closeConn(qc, ce.Code, ce.Reason)
		}
	}()
	s.cc = c
	b.ConnOpen()
	return s.cc, nil
}

// openControl opens our control stream with its SETTINGS (RFC 9114
// §6.2.1): the field-section cap and HTTP Datagrams (RFC 9297 §2.1.1);
// the QPACK dynamic table stays off.
func (c *h3Conn) openControl() error {
	s, err := c.qc.OpenUniStream()
	if err != nil {
		return err
	}
	c.ctrl = s
	settings := h3.SettingsFrame{Settings: []h3.Setting{{ID: h3.SettingMaxFieldSectionSize, Value: uint64(c.limits.MaxSize)}, {ID: h3.SettingH3Datagram, Value: 1}}}
	_, err = s.Write(settings.Append(fquic.AppendVarint(nil, uint64(h3.StreamTypeControl))))
	return err
}

// acceptUni serves the server's unidirectional streams until the
// connection ends: its control stream (SETTINGS, then GOAWAY), the QPACK
// streams (read and dropped: with no dynamic table they carry nothing we
// use), and refuses the rest.
func (c *h3Conn) acceptUni() {
	ctx := c.qc.Context()
	for {
		s, err := c.qc.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		go c.serveUni(s)
	}
}

func (c *h3Conn) serveUni(s *quic.ReceiveStream) {
	defer func() {
		if r := recover(); r != nil {
			stages.Panicked(zerolog.Nop(), r, nil)
			closeConn(c.qc, h3.ErrCodeInternalError, "internal error")
		}
	}()
	br := bufio.NewReaderSize(s, 512)
	typ, err := fquic.ReadVarint(br)
	if err != nil {
		return
	}
	switch h3.StreamType(typ) {
	case h3.StreamTypeControl:
		c.readControl(br)
	case h3.StreamTypeQPACKEncoder, h3.StreamTypeQPACKDecoder:
		io.Copy(io.Discard, br)
	default:
		// We never allow a push (no MAX_PUSH_ID), and unknown stream
		// types are to be ignored (RFC 9114 §6.2).
		s.CancelRead(quic.StreamErrorCode(h3.ErrCodeStreamCreationError))
	}
}

// readControl reads the server's control stream: SETTINGS first, then
// GOAWAY, which stops new requests on this connection.
func (c *h3Conn) readControl(br *bufio.Reader) {
	first := true
	for {
		fh, err := h3.ReadFrameHeader(br)
		if err != nil {
			if c.qc.Context().Err() == nil {
				// RFC 9114 §6.2.1: closing the control stream is a
				// connection error.
				closeConn(c.qc, h3.ErrCodeClosedCriticalStream, "control stream closed")
			}
			return
		}
		if first && fh.Type != h3.FrameTypeSettings {
			closeConn(c.qc, h3.ErrCodeMissingSettings, "control stream without SETTINGS")
			return
		}
		if fh.Type == h3.FrameTypeGoAway {
			c.goingAway.Store(true)
		}
		if fh.Length > 1<<16 {
			closeConn(c.qc, h3.ErrCodeExcessiveLoad, "control frame too large")
			return
		}
		if first {
			first = false
			p := make([]byte, fh.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return
			}
			sf, err := h3.ParseSettings(p)
			if err != nil {
				closeConn(c.qc, h3.ErrCodeSettingsError, "malformed SETTINGS")
				return
			}
			dg, err := h3.DatagramSetting(&sf, c.qc.ConnectionState().SupportsDatagrams.Remote)
			if err != nil {
				closeConn(c.qc, h3.ErrCodeSettingsError, err.Error())
				return
			}
			c.dg.SetPeer(dg)
			v, _ := sf.Get(h3.SettingEnableConnectProtocol)
			c.connectProtocol.Store(v == 1)
			close(c.settings)
			continue
		}
		if _, err := br.Discard(int(fh.Length)); err != nil {
			return
		}
	}
}

func (t *H3) maxHeader() int {
	if t.MaxHeaderBytes > 0 {
		return t.MaxHeaderBytes
	}
	return 64 << 10
}

// Close closes every pooled connection; requests still running on them are
// cut. The gateway calls it once it has drained.
func (t *H3) Close() error {
	t.closed.Store(true)
	t.conns.Range(func(k, v any) bool {
		s := v.(*h3Slot)
		s.mu.Lock()
		if s.cc != nil {
			closeConn(s.cc.qc, h3.ErrCodeNoError, "")
			s.cc = nil
			k.(*route.Backend).ConnClosed()
		}
		s.mu.Unlock()
		return true
	})
	return nil
}

// RoundTrip implements Transport.
func (t *H3) RoundTrip(ctx context.Context, b *route.Backend, req *frames.Head, body *bus.Link) (*Response, error) {
	if re := bodyCut(body); re != nil {
		body.Discard(re)
		return nil, re
	}
	if transferCoded(req) {
		body.Discard(ErrCodingUnsupported)
		return nil, ErrCodingUnsupported
	}
	if req.Path == "" || req.Path[0] != '/' && req.Path != "*" {
		body.Discard(io.EOF)
		return nil, &frames.ResetError{Code: frames.CodeProtocol}
	}
	if req.Protocol != "" {
		req = tunnelHead(req)
	}
	var (
		stale   *h3Conn
		lastErr error
	)
	for range maxH3Attempts {
		c, err := t.conn(ctx, b, stale)
		if err != nil {
			body.Discard(err)
			return nil, err
		}
		if req.Protocol != "" {
			if err := t.awaitConnectProtocol(ctx, c); err != nil {
				body.Discard(err)
				return nil, err
			}
		}
		resp, started, err := t.try(ctx, c, req, body)
		if err == nil || started || ctx.Err() != nil {
			return resp, err
		}
		// The connection was lost or went away before this request got a
		// stream: nothing reached the backend, so it goes to a fresh one.
		stale, lastErr = c, err
	}
	body.Discard(lastErr)
	return nil, &route.DialError{Err: lastErr}
}

// h3Exchange is one request and its response on one request stream.
type h3Exchange struct {
	t      *H3
	c      *h3Conn
	str    *quic.Stream
	br     *bufio.Reader
	stop   func() bool // the context hook that cuts the stream
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// bodyErr is the request body copy's outcome (a client Reset shows
	// there); read after wg.Wait.
	bodyErr error

	want, got int64 // declared and received response body bytes (want -1: unknown)
	remain    uint64
	head      bool          // a response to HEAD: no body
	tunnel    bool          // an opened extended CONNECT: no body timeout (the front's idle rules apply)
	peeked    *frames.Frame // a body frame read ahead of Next (see try)
	ended     bool          // End or Trailers handed out
	resp      Response
	dg        *stages.Datagrams // the stream's HTTP Datagrams, once bound
}

// try sends the request on a new stream of c. started reports whether
// any of it was written (after which it must not be replayed here).
func (t *H3) try(ctx context.Context, c *h3Conn, req *frames.Head, body *bus.Link) (*Response, bool, error) {
	str, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, false, err
	}
	x := &h3Exchange{t: t, c: c, str: str, head: req.Method == "HEAD"}
	// A canceled request cuts its stream both ways: the backend sees
	// H3_REQUEST_CANCELLED, a blocked read or write returns at once.
	x.stop = context.AfterFunc(ctx, x.abort)
	hasBody := req.ContentLength != 0
	enc := h3.NewEncoder()
	sec := enc.AppendRequest(nil, req)
	buf := h3.AppendHeadersFrame(nil, sec)
	if !hasBody {
		body.Discard(io.EOF)
	}
	if _, err := str.Write(buf); err != nil {
		// Nothing went out and the body was not read: the request may
		// move to a fresh connection.
		x.stop()
		x.abort()
		return nil, false, err
	}
	if hasBody {
		bctx, bcancel := context.WithCancel(ctx)
		x.cancel = bcancel
		x.wg.Go(func() { x.bodyErr = x.copyBody(bctx, enc, body) })
	} else {
		str.Close()
	}
	x.br = bufio.NewReaderSize(str, h3ReadBuf)
	h, err := x.readHead(ctx)
	if err != nil {
		x.close(true)
		return nil, true, err
	}
	if req.Protocol != "" && h.Status/100 == 2 {
		// RFC 9220 §3: a 2xx opens the tunnel; the stream's DATA is the
		// backend's side of it.
		h.Protocol = req.Protocol
		h.ContentLength = -1
		x.want, x.tunnel = -1, true
	}
	x.bindDatagrams(ctx)
	if h.Fields.Has("grpc-status") && !x.head && !x.tunnel {
		// A gRPC status in the head is a trailers-only response: HEADERS,
		// then the stream's end. Wait for that end, so the response goes
		// on as one head that ends it: an HTTP/2 client reads a head and
		// an empty DATA after it as a call without trailers (INTERNAL).
		f, err := x.Next(ctx)
		if err != nil {
			x.close(true)
			return nil, true, err
		}
		if f.Kind == frames.KindData && f.End && len(f.Data) == 0 {
			x.resp = Response{Head: h, End: true, body: x}
			return &x.resp, true, nil
		}
		x.peeked = &f // a body after all: it goes out first
	}
	x.resp = Response{Head: h, body: x}
	return &x.resp, true, nil
}

// awaitConnectProtocol waits for the server's SETTINGS and says whether
// it takes extended CONNECT.
func (t *H3) awaitConnectProtocol(ctx context.Context, c *h3Conn) error {
	tm := time.NewTimer(t.Opts.HeadTimeout)
	defer tm.Stop()
	select {
	case <-c.settings:
	case <-c.qc.Context().Done():
		return &route.RefusedError{Err: context.Cause(c.qc.Context())}
	case <-tm.C:
		return ErrTimeout
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if !c.connectProtocol.Load() {
		return ErrNoExtendedConnect
	}
	return nil
}

// bodyDeadline is the read deadline of the next response-body read: none
// for a tunnel, whose silences are the front's to judge.
func (x *h3Exchange) bodyDeadline() time.Time {
	if x.tunnel {
		return time.Time{}
	}
	return time.Now().Add(x.t.Opts.BodyTimeout)
}

// abort resets both directions of the stream.
func (x *h3Exchange) abort() {
	x.str.CancelWrite(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
	x.str.CancelRead(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
}

// copyBody streams the request body from the link as DATA frames, then
// trailers and FIN. A client Reset resets the stream, so the backend never
// sees the body complete.
func (x *h3Exchange) copyBody(ctx context.Context, enc *h3.Encoder, body *bus.Link) error {
	defer body.Discard(io.EOF)
	var buf []byte
	for {
		f, err := body.Recv(ctx)
		if err != nil {
			if bus.IsCleanEnd(err) {
				err = errBodyCut // closed without End: a clean close only follows End
			}
			x.str.CancelWrite(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
			return err
		}
		switch f.Kind {
		case frames.KindData:
			if len(f.Data) > 0 {
				buf = h3.AppendDataHeader(buf[:0], len(f.Data))
				buf = append(buf, f.Data...)
				if _, err := x.str.Write(buf); err != nil {
					body.Consumed(&f)
					return err
				}
			}
			end := f.End
			body.Consumed(&f)
			if end {
				return x.str.Close()
			}
		case frames.KindTrailers:
			if len(f.Head.Fields) > 0 {
				buf = h3.AppendHeadersFrame(buf[:0], enc.AppendTrailers(nil, f.Head.Fields))
				if _, err := x.str.Write(buf); err != nil {
					return err
				}
			}
			return x.str.Close()
		case frames.KindReset:
			x.abort()
			return &frames.ResetError{Code: f.Code}
		default:
			body.Consumed(&f)
		}
	}
}

var errBodyCut = errors.New("upstream: request body cut short")

// readHead reads frames up to the final response head within the head
// timeout, handing 1xx heads to the interim hook.
func (x *h3Exchange) readHead(ctx context.Context) (*frames.Head, error) {
	x.str.SetReadDeadline(time.Now().Add(x.t.Opts.HeadTimeout))
	interims := 0
	for {
		fh, err := h3.ReadFrameHeader(x.br)
		if err != nil {
			return nil, x.readErr(ctx, err)
		}
		switch fh.Type {
		case h3.FrameTypeHeaders:
			h, err := x.section(fh, func(b []byte) (*frames.Head, error) { return h3.DecodeResponse(b, &x.c.limits) })
			if err != nil {
				return nil, err
			}
			if h.Status < 200 {
				// RFC 9114 §4.1: 101 has no meaning in HTTP/3.
				if h.Status == 101 {
					return nil, ErrBadResponse
				}
				if err := relayInterim(ctx, &interims, h); err != nil {
					return nil, err
				}
				continue
			}
			x.want = h.ContentLength
			if h.Fields.Has("trailer") {
				// Announced trailers need a framing that can carry them:
				// an H1 front must send this body chunked.
				h.ContentLength = -1
			}
			if x.head {
				x.want = 0
			}
			x.str.SetReadDeadline(time.Time{})
			return h, nil
		case h3.FrameTypeData:
			// RFC 9114 §4.1: DATA before HEADERS is malformed.
			return nil, ErrBadResponse
		default:
			if err := x.skip(fh); err != nil {
				return nil, x.readErr(ctx, err)
			}
		}
	}
}

// section reads a HEADERS frame's payload (capped) and decodes it.
func (x *h3Exchange) section(fh h3.FrameHeader, decode func([]byte) (*frames.Head, error)) (*frames.Head, error) {
	if fh.Length > uint64(x.c.limits.MaxSize) {
		return nil, ErrBadResponse
	}
	p := make([]byte, fh.Length)
	if _, err := io.ReadFull(x.br, p); err != nil {
		return nil, ErrBadResponse
	}
	h, err := decode(p)
	if err != nil {
		return nil, ErrBadResponse
	}
	return h, nil
}

// skip drops an unknown or reserved frame (RFC 9114 §9: "Implementations
// MUST ignore unknown or unsupported values in all extensible protocol
// elements"); frames that may not appear on a request stream are errors.
func (x *h3Exchange) skip(fh h3.FrameHeader) error {
	switch fh.Type {
	case h3.FrameTypeSettings, h3.FrameTypeGoAway, h3.FrameTypeCancelPush, h3.FrameTypeMaxPushID, h3.FrameTypePushPromise:
		return ErrBadResponse
	}
	if fh.Type.IsReservedH2() {
		return ErrBadResponse
	}
	for rem := fh.Length; rem > 0; {
		n, err := x.br.Discard(int(min(rem, 1<<20)))
		rem -= uint64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// readErr names the cause of a failed read of the response.
func (x *h3Exchange) readErr(ctx context.Context, err error) error {
	var se *quic.StreamError
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case isTimeout(err):
		return ErrTimeout
	case errors.As(err, &se) && se.Remote && se.ErrorCode == quic.StreamErrorCode(h3.ErrCodeRequestRejected):
		// RFC 9114 §4.1.1: H3_REQUEST_REJECTED means the server did not
		// process the request: any method may retry.
		return &route.RefusedError{Err: err}
	}
	// A body the client cut is the cause, not the reset it made us send.
	x.wg.Wait()
	var re *frames.ResetError
	if errors.As(x.bodyErr, &re) {
		return re
	}
	return ErrBadResponse
}

// Next implements BodyReader.
func (x *h3Exchange) Next(ctx context.Context) (frames.Frame, error) {
	if f := x.peeked; f != nil {
		x.peeked = nil
		return *f, nil
	}
	if x.ended {
		return frames.EndFrame(), nil
	}
	for {
		if x.remain > 0 {
			if x.br.Buffered() == 0 {
				x.str.SetReadDeadline(x.bodyDeadline())
			}
			f := frames.Alloc(int(min(x.remain, frames.MaxDataChunk)))
			n, err := x.br.Read(f.Data)
			f.Data = f.Data[:n]
			x.remain -= uint64(n)
			x.got += int64(n)
			if n > 0 {
				if x.want >= 0 && x.got > x.want {
					f.Release()
					return frames.Frame{}, ErrBadResponse
				}
				return f, nil
			}
			f.Release()
			if err == io.EOF {
				return frames.Frame{}, ErrBadResponse // cut inside a DATA frame
			}
			if err != nil {
				return frames.Frame{}, x.readErr(ctx, err)
			}
			continue
		}
		if x.br.Buffered() == 0 {
			x.str.SetReadDeadline(x.bodyDeadline())
		}
		fh, err := h3.ReadFrameHeader(x.br)
		if err == io.EOF {
			// RFC 9114 §4.1.2: a body shorter than its content-length is
			// malformed.
			if x.want >= 0 && x.got != x.want {
				return frames.Frame{}, ErrBadResponse
			}
			x.ended = true
			return frames.EndFrame(), nil
		}
		if err != nil {
			return frames.Frame{}, x.readErr(ctx, err)
		}
		switch fh.Type {
		case h3.FrameTypeData:
			if x.head && fh.Length > 0 {
				return frames.Frame{}, ErrBadResponse
			}
			x.remain = fh.Length
		case h3.FrameTypeHeaders:
			if x.want >= 0 && x.got != x.want {
				return frames.Frame{}, ErrBadResponse
			}
			h, err := x.section(fh, func(b []byte) (*frames.Head, error) {
				fs, err := h3.DecodeTrailers(b, &x.c.limits)
				return &frames.Head{Fields: fs}, err
			})
			if err != nil {
				return frames.Frame{}, err
			}
			x.ended = true
			return frames.TrailersFrame(h.Fields), nil
		default:
			if err := x.skip(fh); err != nil {
				return frames.Frame{}, x.readErr(ctx, err)
			}
		}
	}
}

// Close implements BodyReader. An abort, or a response not read to its
// end, resets the stream both ways; the connection stays for the other
// streams.
func (x *h3Exchange) Close(abort bool) { x.close(abort || !x.ended) }

func (x *h3Exchange) close(abort bool) {
	x.stop()
	if x.dg != nil {
		x.c.dg.Remove(uint64(x.str.StreamID()))
		x.dg.Close()
	}
	if abort {
		x.abort()
	} else {
		// The response is complete: the backend may stop sending, and a
		// request body still streaming has nobody left to answer it.
		x.str.CancelRead(quic.StreamErrorCode(h3.ErrCodeNoError))
	}
	if x.cancel != nil {
		x.cancel()
	}
	x.wg.Wait()
}

// bindDatagrams carries the front stream's HTTP Datagrams on this request
// stream when the server takes them (its SETTINGS said so); the proxy
// counts a stream left unbound as one whose backend cannot.
func (x *h3Exchange) bindDatagrams(ctx context.Context) {
	d := datagramsOf(ctx)
	if d == nil {
		return
	}
	select {
	case <-x.c.settings:
	default:
		return // no SETTINGS yet: nothing says the server takes them
	}
	if !x.c.dg.Peer() {
		return
	}
	id := uint64(x.str.StreamID())
	x.c.dg.Add(id, d)
	if !d.Bind(x.c.dg.Sink(id)) {
		x.c.dg.Remove(id)
		return
	}
	x.dg = d
}
