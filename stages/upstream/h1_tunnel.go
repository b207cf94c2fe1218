package upstream

import (
	"context"
	"io"

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
	// The switched connection is never reused: its writer is the
	// tunnel's, which pools it while the client is silent, and its head
	// scratch goes.
	bw := c.bw
	c.bw, c.scratch = nil, nil
	ex.wg.Go(func() { ex.pumpErr = ex.copyToBackend(cctx, bw, body, false, true) })
	ex.resp = Response{Head: rh, body: ex}
	return &ex.resp, nil
}
