package decode

import (
	"context"
	"io"
	"time"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// upgradeRequest checks a WebSocket opening handshake (RFC 6455 §4.1–4.2)
// and turns its head into the neutral tunnel request, the extended CONNECT
// of RFC 8441: method CONNECT, protocol "websocket", the Sec-WebSocket-*
// fields kept for the backend hop. A handshake the gateway would not
// complete is refused here, before anything reaches a backend: 426 naming
// the version for a wrong Sec-WebSocket-Version (§4.4), 400 otherwise.
func upgradeRequest(req *h1.Request) (key string, err error) {
	h := req.Head
	fs := h.Fields
	switch {
	case h.Method != "GET":
		return "", refuseUpgrade(400, nil)
	case !bodiless(req.Body):
		return "", refuseUpgrade(400, nil)
	case fs.Count("sec-websocket-version") != 1 || fs.Value("sec-websocket-version") != ws.Version:
		return "", refuseUpgrade(426, frames.Fields{{Name: "sec-websocket-version", Value: ws.Version}})
	case fs.Count("sec-websocket-key") != 1 || !ws.ValidKey(fs.Value("sec-websocket-key")):
		return "", refuseUpgrade(400, nil)
	}
	h.Method = "CONNECT"
	h.Protocol = "websocket"
	h.ContentLength = -1
	return fs.Value("sec-websocket-key"), nil
}

func refuseUpgrade(status int, extra frames.Fields) error {
	guard.WSHandshakeRefused.Inc()
	return &headError{status: status, extra: extra}
}

// isWebSocket reports whether an Upgrade field value offers websocket.
func isWebSocket(upgrade string) bool {
	return frames.Fields{{Name: "upgrade", Value: upgrade}}.HasToken("upgrade", "websocket")
}

// serveTunnel runs a WebSocket upgrade: the stream actor takes it to a
// backend, and once the writer has sent the 101 this goroutine relays the
// client's bytes. It returns true when the backend refused the upgrade and
// the connection stays HTTP.
func (c *H1Conn) serveTunnel(ctx context.Context, x *encode.H1Exchange, h *frames.Head) bool {
	if !c.enqueue(ctx, x) {
		x.Stream.Req.Discard(context.Cause(ctx))
		x.Discard()
		return false
	}
	c.wg.Go(func() { c.handler.ServeStream(ctx, x.Stream) })
	if err := x.Stream.Req.Send(ctx, frames.HeadersFrame(h, false)); err != nil {
		return false
	}
	if !x.Tunnel.Opened(ctx) {
		x.Stream.Req.Close(io.EOF)
		return ctx.Err() == nil
	}
	c.relayTunnel(ctx, x)
	return false
}

// relayTunnel carries the client's bytes to the stream as they arrive,
// checking the frame headers (masking, control frames, message size, ping
// rate), until the client closes, a guard closes the tunnel or the writer
// ends it. While the client is idle the connection holds no read buffer.
func (c *H1Conn) relayTunnel(ctx context.Context, x *encode.H1Exchange) {
	st, t, lim := x.Stream, x.Tunnel, c.cfg.WS
	in := ws.Inspector{Masked: true, RSV1: t.RSV1(), Limits: *lim}
	c.src.StartBody(h1.Body{Kind: h1.BodyClose}, 0)
	for {
		var err error
		if len(c.src.Buffered()) == 0 {
			c.conn.SetReadDeadline(tunnelDeadline(t, &in, lim))
			// A wake-up (drain, the writer's end) that came before the
			// deadline was armed would be lost: look again.
			if ctx.Err() != nil || c.stopRead.Load() {
				st.Req.Close(io.EOF)
				return
			}
			err = c.src.WaitIdle()
		}
		var f frames.Frame
		if err == nil {
			f, err = c.src.NextBody()
		}
		now := time.Now()
		if err != nil {
			switch {
			case ctx.Err() != nil || c.stopRead.Load():
				st.Req.Close(io.EOF)
				return
			case isTimeout(err):
				if e := tunnelExpired(t, &in, lim, now); e != nil {
					closeTunnel(ctx, c.cfg.Log, c.info, x.Stream, x.Tunnel, in.AtBoundary(), e)
					return
				}
				continue
			}
			// The client's connection failed: the backend sees an abort.
			st.Req.Send(ctx, frames.ResetFrame(frames.CodeCancel))
			st.Req.Close(&frames.ResetError{Code: frames.CodeCancel})
			return
		}
		if n := f.Len(); n > 0 {
			boundary := in.AtBoundary()
			if err := in.Feed(f.Data, now); err != nil {
				f.Release()
				closeTunnel(ctx, c.cfg.Log, c.info, x.Stream, x.Tunnel, boundary, asClose(err))
				return
			}
			t.Saw(&in)
			t.Touch(now)
			st.ReqBytes.Add(int64(n))
		}
		end := f.End
		if err := st.Req.Send(ctx, f); err != nil {
			return
		}
		if end {
			st.Req.Close(io.EOF)
			awaitTunnelEnd(ctx, t, lim)
			return
		}
	}
}
