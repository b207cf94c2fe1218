package decode

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
)

// serveTunnel runs a WebSocket over an HTTP/3 request stream (RFC 9220):
// the extended CONNECT head goes to the stream actor as the neutral tunnel
// request; once the writer has sent the 200, this stream's DATA frames
// carry the client's WebSocket bytes, checked frame header by frame header,
// and the writer's DATA frames the backend's. Any other answer is an
// ordinary response.
func (c *h3Conn) serveTunnel(ctx context.Context, str *quic.Stream, br *bufio.Reader, w *encode.H3Writer, head *frames.Head, d *stages.Datagrams) {
	head.ContentLength = -1
	info := *c.info
	info.Proto = "HTTP/3"
	st := &stages.Stream{
		Req:       bus.NewLink(c.cfg.StreamBytes, c.budget),
		Resp:      bus.NewLink(c.cfg.StreamBytes, c.budget),
		Conn:      &info,
		KeepAlive: true,
		Datagrams: d,
	}
	t := encode.NewTunnel(ctx, "")
	st.Tunnel = t.End
	w.Tunnel = t
	st.Req.Send(ctx, frames.HeadersFrame(head, false))
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.handler.ServeStream(ctx, st) })
	wg.Go(func() {
		if !t.Opened(ctx) {
			st.Req.Close(io.EOF)
			return
		}
		c.relayTunnel(ctx, str, br, st, t)
	})
	w.WriteResponse(ctx, st.Resp, head.Method)
	st.Resp.Discard(io.EOF)
	// The relay may be waiting for the client's bytes: nobody is left to
	// take them.
	str.CancelRead(stopCode(h3.ErrCodeNoError))
}

// relayTunnel carries the client's tunnel bytes (the payloads of its DATA
// frames) to the stream until the client ends the stream, a guard closes
// the tunnel or the tunnel ends.
func (c *h3Conn) relayTunnel(ctx context.Context, str *quic.Stream, br *bufio.Reader, st *stages.Stream, t *encode.Tunnel) {
	lim := c.cfg.WS
	in := ws.Inspector{Masked: true, RSV1: t.RSV1(), Limits: *lim}
	closeWith := func(boundary bool, e *ws.CloseError) {
		closeTunnel(ctx, c.cfg.Log, c.info, st, t, boundary, e)
	}
	// wait handles a failed read: a timeout that has not expired either
	// limit (the other direction was busy) reads on.
	wait := func(err error) (again bool) {
		select {
		case <-t.Done():
			st.Req.Close(io.EOF)
			return false
		default:
		}
		if isTimeout(err) {
			if e := tunnelExpired(t, &in, lim, time.Now()); e != nil {
				closeWith(in.AtBoundary(), e)
				return false
			}
			return true
		}
		st.Req.Send(ctx, frames.ResetFrame(frames.CodeCancel))
		st.Req.Close(&frames.ResetError{Code: frames.CodeCancel})
		return false
	}
	for {
		str.SetReadDeadline(tunnelDeadline(t, &in, lim))
		fh, err := h3.ReadFrameHeader(br)
		if err == io.EOF {
			st.Req.Send(ctx, frames.EndFrame())
			st.Req.Close(io.EOF)
			awaitTunnelEnd(ctx, t, lim)
			return
		}
		if err != nil {
			if wait(err) {
				continue
			}
			return
		}
		switch fh.Type {
		case h3.FrameTypeData:
			for rem := fh.Length; rem > 0; {
				str.SetReadDeadline(tunnelDeadline(t, &in, lim))
				f := frames.Alloc(int(min(rem, frames.MaxDataChunk)))
				n, err := br.Read(f.Data)
				f.Data = f.Data[:n]
				if n > 0 {
					now := time.Now()
					rem -= uint64(n)
					boundary := in.AtBoundary()
					if ferr := in.Feed(f.Data, now); ferr != nil {
						f.Release()
						closeWith(boundary, asClose(ferr))
						return
					}
					t.Saw(&in)
					t.Touch(now)
					st.ReqBytes.Add(int64(n))
					if st.Req.Send(ctx, f) != nil {
						return
					}
				} else {
					f.Release()
				}
				if err == io.EOF && rem > 0 {
					// The stream ended inside a DATA frame.
					st.Req.Send(ctx, frames.ResetFrame(c.bodyErr(str, errTruncatedFrame)))
					st.Req.Close(&frames.ResetError{Code: frames.CodeProtocol})
					return
				}
				if err != nil && err != io.EOF && !wait(err) {
					return
				}
			}
		case h3.FrameTypeHeaders:
			// RFC 9220 §3: the tunnel's bytes are DATA frames; trailers on
			// a tunnel make the stream malformed.
			closeWith(in.AtBoundary(), &ws.CloseError{Code: ws.CloseProtocolError, Reason: "HEADERS inside a tunnel", Rule: ws.RuleProtocol})
			return
		default:
			if err := c.otherFrame(br, fh); err != nil {
				st.Req.Send(ctx, frames.ResetFrame(c.bodyErr(str, err)))
				st.Req.Close(&frames.ResetError{Code: frames.CodeProtocol})
				return
			}
		}
	}
}
