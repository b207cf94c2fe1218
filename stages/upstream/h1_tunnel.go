package upstream

import (
	"bufio"
	"context"
	"io"
	"sync/atomic"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages/route"
)

// upgrade sends a neutral tunnel request (extended CONNECT with
// :protocol websocket) as an HTTP/1.1 Upgrade (RFC 6455 §4.1) and, when
// the backend switches protocols with the right Sec-WebSocket-Accept,
// returns a head with Protocol set and status 200 (the neutral form of
// an opened tunnel, as RFC 8441 has it) whose body is the backend's bytes;
// the client's bytes go to the backend from body. Any other final answer
// is an ordinary response, and the request's body link is let go.
func (ex *h1Exchange) upgrade(ctx context.Context, req *frames.Head, body *bus.Link) (*Response, error) {
	if req.Protocol != "websocket" {
		ex.fail()
		body.Discard(ErrCodingUnsupported)
		return nil, ErrCodingUnsupported
	}
	h := *req
	h.Method = "GET"
	h.Fields = append(make(frames.Fields, 0, len(req.Fields)+3), req.Fields...)
	key := h.Fields.Value("sec-websocket-key")
	if !ws.ValidKey(key) {
		// An HTTP/2 or HTTP/3 client's extended CONNECT has no key.
		key = ws.NewKey()
		h.Fields.Set("sec-websocket-key", key)
	}
	h.Fields.Set("sec-websocket-version", ws.Version)
	h.Fields.Set("upgrade", "websocket")
	h.Fields.Set("connection", "Upgrade")
	c := ex.c
	c.scratch = h1.AppendRequestHead(c.scratch[:0], &h, h1.Body{Kind: h1.BodyNone})
	c.bw.Write(c.scratch)
	if err := c.bw.Flush(); err != nil {
		ex.fail()
		body.Discard(err)
		return nil, &route.DialError{Err: err}
	}
	resp, err := ex.readHead(ctx, "GET")
	if err != nil {
		body.Discard(err)
		return nil, err
	}
	if resp.Head.Status != 101 {
		body.Discard(io.EOF)
		return ex.response("GET", resp), nil
	}
	rh := resp.Head
	if !rh.Fields.HasToken("upgrade", "websocket") || !rh.Fields.HasToken("connection", "upgrade") ||
		rh.Fields.Value("sec-websocket-accept") != ws.AcceptKey(key) {
		// RFC 6455 §4.1: a client that sees a wrong handshake fails the
		// connection; the client's key is ours to vouch for.
		ex.fail()
		body.Discard(ErrBadResponse)
		return nil, ErrBadResponse
	}
	rh.Status = 200
	rh.Protocol = "websocket"
	rh.ContentLength = -1
	rh.Fields.Del("sec-websocket-accept")
	ex.tunnel = true
	ex.keepAlive = false // a switched connection is never reused
	c.src.StartBody(h1.Body{Kind: h1.BodyClose}, 0)
	cctx, cancel := context.WithCancel(ctx)
	ex.stopCopy = cancel
	// The switched connection is never reused: its writer goes back to
	// the pool (the copy takes one while the client's bytes are there),
	// and its head scratch goes.
	putTunnelWriter(c.bw)
	c.bw, c.scratch = nil, nil
	(&tunnelCopy{x: ex, ctx: cctx, body: body}).start()
	ex.resp = Response{Head: rh, body: ex}
	return &ex.resp, nil
}

// tunnelCopy is the client-to-backend side of an H1 tunnel without a
// parked goroutine: a goroutine runs while the client's bytes (or the
// link's close, or the context's end) are there to handle and exits when
// the link runs dry; the link's notifier and an AfterFunc on the context
// start the next. An idle tunnel then costs no copy goroutine, nor write
// buffer. The exchange's WaitGroup counts it from start to end, as it
// counted copyToBackend's goroutine.
type tunnelCopy struct {
	x     *h1Exchange
	ctx   context.Context
	body  *bus.Link
	bw    *bufio.Writer // nil while parked
	state atomic.Int32
	stop  func() bool // unregisters the context's wake-up
}

// The states of a tunnelCopy.
const (
	copyParked int32 = iota
	copyRunning
	copyOver
)

func (p *tunnelCopy) start() {
	p.x.wg.Add(1)
	p.state.Store(copyRunning)
	p.stop = context.AfterFunc(p.ctx, p.kick)
	p.body.Notify(p)
	go p.pump()
}

// LinkReady implements bus.Notifier.
func (p *tunnelCopy) LinkReady() { p.kick() }

func (p *tunnelCopy) kick() {
	if p.state.CompareAndSwap(copyParked, copyRunning) {
		go p.pump()
	}
}

// pump copies what the link holds to the backend, then parks (or ends).
func (p *tunnelCopy) pump() {
	for {
		cause := p.body.Cause()
		f, ok := p.body.TryRecv()
		if !ok && (cause != nil || p.ctx.Err() != nil) {
			// Closed or cancelled: Recv does not wait then, and answers as
			// copyToBackend's did (or with a frame that came meanwhile).
			var err error
			if f, err = p.body.Recv(p.ctx); err != nil {
				abortConn(p.x.c.conn)
				p.end(err)
				return
			}
			ok = true
		}
		if !ok {
			if p.bw != nil {
				if err := p.bw.Flush(); err != nil {
					p.end(err)
					return
				}
				putTunnelWriter(p.bw)
				p.bw = nil
			}
			p.state.Store(copyParked)
			// What came since TryRecv found the link empty woke no one:
			// Notify calls LinkReady at once for a link holding frames or
			// closed, and the context is looked at again.
			p.body.Notify(p)
			if p.ctx.Err() != nil {
				p.kick()
			}
			return
		}
		if done, err := p.frame(f); done {
			p.end(err)
			return
		}
	}
}

// frame copies one frame of the client's (copyToBackend's tunnel case);
// done means the copy is over, with err its result.
func (p *tunnelCopy) frame(f frames.Frame) (done bool, err error) {
	switch f.Kind {
	case frames.KindData:
		if p.bw == nil {
			p.bw = getTunnelWriter(p.x.c.conn)
		}
		if len(f.Data) > 0 {
			if _, err := p.bw.Write(f.Data); err != nil {
				p.body.Consumed(&f)
				return true, err
			}
		}
		end := f.End
		p.body.Consumed(&f)
		if !end {
			return false, nil
		}
		// The tunnel's end is a half-close: the backend reads EOF and
		// finishes its side.
		if err := p.bw.Flush(); err != nil {
			return true, err
		}
		if cw, ok := p.x.c.conn.(interface{ CloseWrite() error }); ok {
			return true, cw.CloseWrite()
		}
		return true, nil
	case frames.KindTrailers:
		return true, nil
	case frames.KindReset:
		abortConn(p.x.c.conn)
		return true, &frames.ResetError{Code: f.Code}
	}
	return false, nil
}

func (p *tunnelCopy) end(err error) {
	p.state.Store(copyOver)
	p.body.Notify(nil)
	p.stop()
	if p.bw != nil {
		putTunnelWriter(p.bw)
		p.bw = nil
	}
	p.body.Discard(io.EOF)
	p.x.pumpErr = err
	p.x.wg.Done()
}
