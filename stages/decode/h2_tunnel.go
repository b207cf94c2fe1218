package decode

import (
	"context"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages/encode"
)

// h2Tunnel is the client side of a WebSocket over an HTTP/2 stream
// (RFC 8441): the stream's DATA payloads are the client's WebSocket bytes,
// checked frame header by frame header before they go on, under the
// stream's flow control like any request body.
type h2Tunnel struct {
	t   *encode.Tunnel
	lim *ws.Limits

	// mu orders the reader's feed and the watcher's timeout close: both
	// send on the stream's request link, and a Close of ours must fall on
	// a frame boundary of what went before it.
	mu      sync.Mutex
	in      ws.Inspector
	closed  bool // a Close of ours is sent or the tunnel ended: drop the rest
	closing bool // the watcher started a timeout close
}

// openTunnel makes stream s an extended CONNECT's tunnel: the actor answers
// on its own link, and encode.RelayH2Tunnel turns that answer into what
// the writer sends on resp.
func (c *H2Conn) openTunnel(ctx context.Context, s *h2Stream, head *frames.Head, resp *bus.Link) {
	head.ContentLength = -1
	t := encode.NewTunnel(ctx, "")
	s.st.Tunnel = t.End
	s.tun = &h2Tunnel{t: t, lim: c.cfg.WS, in: ws.Inspector{Masked: true, Limits: *c.cfg.WS}}
	actor := bus.NewLink(c.cfg.StreamBytes, c.outBudget)
	s.st.Resp = actor
	s.st.KeepAlive = true
	c.wg.Go(func() {
		defer c.recoverConn()
		encode.RelayH2Tunnel(ctx, t, actor, resp)
	})
}

// tunnelData feeds one DATA payload of a tunnel stream (reader only).
func (c *H2Conn) tunnelData(s *h2Stream, data []byte, end bool) {
	tun := s.tun
	tun.mu.Lock()
	defer tun.mu.Unlock()
	select {
	case <-tun.t.Done():
		tun.closed = true
	default:
	}
	if tun.closed {
		c.creditNow(s, len(data))
		if end {
			s.bodyDone()
		}
		return
	}
	now := time.Now()
	if len(data) > 0 {
		// The backend's answer (read before any client frame arrives in
		// practice) says whether RSV1 is in use.
		tun.in.RSV1 = tun.t.RSV1()
		boundary := tun.in.AtBoundary()
		if err := tun.in.Feed(data, now); err != nil {
			c.creditNow(s, len(data))
			tun.closed = true
			s.bodyDone()
			closeTunnel(c.ctx, c.cfg.Log, c.info, s.st, tun.t, boundary, asClose(err))
			return
		}
		tun.t.Saw(&tun.in)
		tun.t.Touch(now)
		s.st.ReqBytes.Add(int64(len(data)))
	}
	c.forward(s, data, end)
	if end {
		// The client half-closed; the backend may still send, under the
		// idle timeout the watcher keeps.
		tun.closed = true
	}
}

// expireTunnels closes the tunnels whose idle or read-frame timeout has
// passed at now (watcher). The close runs on its own goroutine: it may
// wait behind the reader's send on the same link.
func (c *H2Conn) expireTunnels(now time.Time) {
	c.mu.Lock()
	if c.tunnels == 0 {
		c.mu.Unlock()
		return // the common case: an ordinary connection costs no scan
	}
	var due []*h2Stream
	for _, s := range c.streams {
		if s.tun != nil {
			due = append(due, s)
		}
	}
	c.mu.Unlock()
	for _, s := range due {
		tun := s.tun
		if !tun.mu.TryLock() {
			continue // the reader is feeding it: it is not idle; next tick
		}
		if tun.closing {
			tun.mu.Unlock()
			continue
		}
		e := tun.expired(now)
		if e == nil {
			tun.mu.Unlock()
			continue
		}
		tun.closing = true
		tun.mu.Unlock()
		c.wg.Go(func() {
			defer c.recoverConn()
			tun.mu.Lock()
			defer tun.mu.Unlock()
			if tun.closed {
				// The client's side is over: only the backend's may still
				// be open, and the writer's Close ends it.
				tun.t.Close(e)
				return
			}
			tun.closed = true
			closeTunnel(c.ctx, c.cfg.Log, c.info, s.st, tun.t, tun.in.AtBoundary(), e)
		})
	}
}

// expired says which timeout, if any, has passed; mu is held.
func (tun *h2Tunnel) expired(now time.Time) *ws.CloseError {
	select {
	case <-tun.t.Done():
		return nil
	default:
	}
	return tunnelExpired(tun.t, &tun.in, tun.lim, now)
}
