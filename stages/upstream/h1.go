package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/stages/decode"
	"github.com/expressgateway/expressgateway/stages/route"
)

// respHeadBuf is the read buffer of a backend connection: the response
// head cap plus one body chunk.
const respHeadBuf = 64<<10 + frames.MaxDataChunk

// reqWriteBuf batches a request head with the first body bytes; larger
// body frames bypass it.
const reqWriteBuf = 4 << 10

// H1 is the HTTP/1.1 transport: keep-alive connections pooled per backend.
type H1 struct {
	Opts   Options
	Limits h1.Limits
	dialer net.Dialer
}

func opts(b *route.Backend) *BackendOpts {
	o, _ := b.Opts.(*BackendOpts)
	return o
}

func (t *H1) dial(ctx context.Context, b *route.Backend) (*pconn, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, t.Opts.ConnectTimeout)
	defer cancel()
	c, err := t.dialer.DialContext(ctx, "tcp", b.Address)
	if err != nil {
		return nil, &route.DialError{Err: err}
	}
	if o := opts(b); o != nil && o.TLS != nil {
		tc := tls.Client(c, o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, &route.DialError{Err: err}
		}
		c = tc
	}
	observeConnect(ctx, b, "h1", start)
	src := decode.NewSource(c, respHeadBuf)
	src.Underscore = h1.UnderscoreAllow // the policy is about requests
	return &pconn{conn: c, src: src, bw: bufio.NewWriterSize(c, reqWriteBuf), created: time.Now()}, nil
}

// RoundTrip implements Transport.
func (t *H1) RoundTrip(ctx context.Context, b *route.Backend, req *frames.Head, body *bus.Link) (*Response, error) {
	if re := bodyCut(body); re != nil {
		body.Discard(re)
		return nil, re
	}
	o := opts(b)
	var c *pconn
	if o != nil && o.pool != nil {
		c = o.pool.get(time.Now(), &t.Opts, requestEnded(req) && idempotent(req.Method))
	}
	if c == nil {
		// Count the connection before dialling, so that max_connections
		// holds under concurrent dials; every count is paired with one
		// ConnClosed (pconn.close).
		if !b.ConnOpen() {
			b.ConnClosed()
			body.Discard(route.ErrCircuitOpen)
			return nil, route.ErrCircuitOpen
		}
		var err error
		if c, err = t.dial(ctx, b); err != nil {
			b.ConnClosed()
			body.Discard(err)
			return nil, err
		}
		c.b = b
	}
	ex := &h1Exchange{t: t, b: b, c: c, method: req.Method}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	ex.stop = stop

	if req.Protocol != "" {
		return ex.upgrade(ctx, req, body)
	}
	reqBody := h1.Body{Kind: h1.BodyNone}
	hasBody := req.ContentLength != 0 && !requestEnded(req)
	if hasBody {
		if req.ContentLength > 0 {
			reqBody = h1.Body{Kind: h1.BodyLength, Length: req.ContentLength}
		} else {
			reqBody = h1.Body{Kind: h1.BodyChunked}
		}
	}
	bw := c.bw
	c.scratch = h1.AppendRequestHead(c.scratch[:0], req, reqBody)
	bw.Write(c.scratch)
	if !hasBody {
		body.Discard(io.EOF)
		if err := bw.Flush(); err != nil {
			ex.fail()
			return nil, &route.DialError{Err: err} // nothing reached a live backend
		}
	} else {
		ex.wg.Go(func() { ex.pumpErr = ex.copyToBackend(ctx, bw, body, reqBody.Kind == h1.BodyChunked) })
	}

	resp, err := ex.readHead(ctx, req.Method)
	if err != nil {
		return nil, err
	}
	return ex.response(req.Method, resp), nil
}

// readHead reads the final response head, relaying interim ones.
func (ex *h1Exchange) readHead(ctx context.Context, method string) (h1.Response, error) {
	c, t := ex.c, ex.t
	// The head must arrive within the head timeout.
	c.conn.SetReadDeadline(time.Now().Add(t.Opts.HeadTimeout))
	var resp h1.Response
	interims := 0
	for {
		var err error
		if buf := c.src.Buffered(); len(buf) > 0 {
			var n int
			resp, n, err = h1.ParseResponse(buf, method, &t.Limits)
			if err == nil {
				c.src.Consume(n)
				if resp.Head.Status >= 100 && resp.Head.Status < 200 && resp.Head.Status != 101 {
					if err := relayInterim(ctx, &interims, resp.Head); err != nil {
						ex.fail()
						return h1.Response{}, err
					}
					continue
				}
				return resp, nil
			}
			if !errors.Is(err, h1.ErrShort) {
				ex.fail()
				return h1.Response{}, ErrBadResponse
			}
		}
		if err = c.src.Fill(); err != nil {
			ex.fail()
			// When the client's body failed, that is the cause, not the
			// backend hanging up on a half-sent request.
			ex.wg.Wait()
			var re *frames.ResetError
			if errors.As(ex.pumpErr, &re) {
				return h1.Response{}, ex.pumpErr
			}
			if ctx.Err() != nil {
				return h1.Response{}, context.Cause(ctx)
			}
			if isTimeout(err) {
				return h1.Response{}, ErrTimeout
			}
			return h1.Response{}, ErrBadResponse
		}
	}
}

// response sets up the body of a final response and returns it.
func (ex *h1Exchange) response(method string, resp h1.Response) *Response {
	c := ex.c
	ex.keepAlive = resp.KeepAlive
	c.src.StartBody(resp.Body, 0) // the response cap is the proxy's (live on reload)
	resp.Head.ContentLength = -1
	if resp.Body.Kind == h1.BodyLength {
		resp.Head.ContentLength = resp.Body.Length
	} else if resp.Body.Kind == h1.BodyNone {
		resp.Head.ContentLength = 0
		if method == "HEAD" {
			resp.Head.ContentLength = resp.Body.Length
		}
	}
	ex.none = resp.Body.Kind == h1.BodyNone
	ex.resp = Response{Head: resp.Head, body: ex}
	return &ex.resp
}

func requestEnded(req *frames.Head) bool { return req.ContentLength == 0 }

// idempotent methods may be replayed (RFC 9110 §9.2.2).
func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// h1Exchange is one request on one backend connection.
type h1Exchange struct {
	t         *H1
	b         *route.Backend
	c         *pconn
	method    string
	keepAlive bool
	none      bool
	done      bool
	// tunnel is set once a backend accepted an upgrade: the body is the
	// backend's raw bytes, and Close stops the copy of the client's.
	tunnel   bool
	stopCopy context.CancelFunc
	stop     func() bool

	wg      sync.WaitGroup
	pumpErr error

	resp Response // what RoundTrip returns, allocated with the exchange
}

// copyToBackend streams the request body from the link to the backend,
// returning credit as bytes are written. A Reset (the client's body was
// cut or malformed) aborts the connection mid-body, so the backend never
// sees it complete. (A tunnel's bytes go by tunnelCopy.)
func (x *h1Exchange) copyToBackend(ctx context.Context, bw *bufio.Writer, body *bus.Link, chunked bool) error {
	defer body.Discard(io.EOF)
	var scratch []byte
	for {
		f, ok := body.TryRecv()
		if !ok {
			if err := bw.Flush(); err != nil {
				return err
			}
			var err error
			if f, err = body.Recv(ctx); err != nil {
				abortConn(x.c.conn)
				return err
			}
		}
		switch f.Kind {
		case frames.KindData:
			if len(f.Data) > 0 {
				if chunked {
					scratch = h1.AppendChunk(scratch[:0], f.Data)
					_, err := bw.Write(scratch)
					if err != nil {
						body.Consumed(&f)
						return err
					}
				} else if _, err := bw.Write(f.Data); err != nil {
					body.Consumed(&f)
					return err
				}
			}
			end := f.End
			body.Consumed(&f)
			if end {
				if chunked {
					bw.Write(h1.AppendLastChunk(scratch[:0], nil))
				}
				return bw.Flush()
			}
		case frames.KindTrailers:
			if chunked {
				bw.Write(h1.AppendLastChunk(scratch[:0], f.Head.Fields))
			}
			return bw.Flush()
		case frames.KindReset:
			abortConn(x.c.conn)
			return &frames.ResetError{Code: f.Code}
		}
	}
}

// tunnelWriters are the write buffers of tunnels with bytes on their way
// to the backend.
var tunnelWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, reqWriteBuf) }}

func getTunnelWriter(c net.Conn) *bufio.Writer {
	bw := tunnelWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	return bw
}

// putTunnelWriter pools a flushed (or failed) tunnel writer.
func putTunnelWriter(bw *bufio.Writer) {
	if bw.Size() == reqWriteBuf {
		bw.Reset(nil)
		tunnelWriters.Put(bw)
	}
}

// abortConn closes a backend connection with a TCP reset (SO_LINGER 0):
// bytes still queued are dropped, and the backend reads an error, never a
// FIN that a lenient parser could take for the end of a request.
func abortConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Next implements BodyReader.
func (x *h1Exchange) Next(ctx context.Context) (frames.Frame, error) {
	if x.none {
		x.none = false
		x.done = true
		return frames.EndFrame(), nil
	}
	if !x.c.src.InBody() {
		x.done = true
		return frames.EndFrame(), nil
	}
	if len(x.c.src.Buffered()) == 0 {
		if x.tunnel {
			// A tunnel's silence is the front's to judge (its idle
			// timeout sees both directions), and a silent tunnel holds
			// no read buffer.
			x.c.conn.SetReadDeadline(time.Time{})
			if ctx.Err() != nil {
				return frames.Frame{}, context.Cause(ctx)
			}
			if err := x.c.src.WaitIdle(); err != nil {
				if ctx.Err() != nil {
					return frames.Frame{}, context.Cause(ctx)
				}
				return frames.Frame{}, err
			}
		} else {
			x.c.conn.SetReadDeadline(time.Now().Add(x.t.Opts.BodyTimeout))
		}
	}
	f, err := x.c.src.NextBody()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return frames.Frame{}, context.Cause(ctx)
		case isTimeout(err):
			return frames.Frame{}, ErrTimeout
		}
		return frames.Frame{}, err
	}
	if f.End {
		x.done = true
	}
	return f, nil
}

// Close implements BodyReader: the connection goes back to the pool only
// when the response ended cleanly, the request body was fully sent and
// both sides allow keep-alive.
func (x *h1Exchange) Close(abort bool) {
	// When the cancel hook already ran (or is running), its past deadline
	// may land at any moment: the connection cannot be reused. Otherwise
	// only our own read deadlines are armed, and every user of a pooled
	// connection arms its own before reading, so none is cleared here.
	stopped := x.stop()
	if x.stopCopy != nil {
		x.stopCopy()
	}
	x.wg.Wait()
	if abort || !stopped || !x.done || !x.keepAlive || x.pumpErr != nil {
		x.fail()
		return
	}
	if o := opts(x.b); o != nil && o.pool != nil {
		o.pool.put(x.c, time.Now(), &x.t.Opts)
		return
	}
	x.fail()
}

func (x *h1Exchange) fail() { x.c.close() }
