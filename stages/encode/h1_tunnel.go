package encode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
)

// H1Tunnel is what the reader and the writer of an HTTP/1.1 connection
// share for a WebSocket upgrade (RFC 6455): the writer tells the reader
// whether the backend accepted it, and the reader, which sees the client's
// frames, can end it with a Close that the writer sends.
type H1Tunnel struct {
	Key string // the client's Sec-WebSocket-Key

	once   sync.Once
	opened chan bool // the writer's verdict, sent once
	// ctx bounds the writer's wait for the backend's bytes; the reader
	// cancels it with a *ws.CloseError for the writer to send that Close.
	ctx    context.Context
	cancel context.CancelCauseFunc
	rsv1   atomic.Bool  // the backend accepted an extension (RSV1 in use)
	last   atomic.Int64 // unix nanoseconds of the last byte relayed either way
}

// NewH1Tunnel returns the shared state of an upgrade whose writer runs
// under ctx.
func NewH1Tunnel(ctx context.Context, key string) *H1Tunnel {
	t := &H1Tunnel{Key: key, opened: make(chan bool, 1)}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	t.Touch(time.Now())
	return t
}

func (t *H1Tunnel) decide(ok bool) {
	t.once.Do(func() {
		t.opened <- ok
		if !ok {
			t.cancel(nil)
		}
	})
}

// Opened waits for the writer's verdict: true once the 101 went out, false
// when the response was anything else (the connection stays HTTP).
func (t *H1Tunnel) Opened(ctx context.Context) bool {
	select {
	case ok := <-t.opened:
		return ok
	case <-ctx.Done():
		return false
	}
}

// Close has the writer send the client a Close with e's code and end the
// tunnel.
func (t *H1Tunnel) Close(e *ws.CloseError) { t.cancel(e) }

// Touch records that bytes went by at now.
func (t *H1Tunnel) Touch(now time.Time) { t.last.Store(now.UnixNano()) }

// LastActive is when bytes last went by, either way.
func (t *H1Tunnel) LastActive() time.Time { return time.Unix(0, t.last.Load()) }

// RSV1 reports whether the client's frames may set RSV1: the backend
// accepted an extension (permessage-deflate). Valid once Opened is true.
func (t *H1Tunnel) RSV1() bool { return t.rsv1.Load() }

// writeTunnel writes the 101 for an accepted upgrade, then relays the
// backend's bytes as they come, checking their framing, until the backend
// ends, fails, or the reader closes the tunnel. The connection never
// carries another request.
func (w *H1Writer) writeTunnel(x *H1Exchange, h *frames.Head, link *bus.Link) (bool, error) {
	t := x.Tunnel
	defer t.cancel(nil)
	sw := &frames.Head{Status: 101, ContentLength: -1, Fields: make(frames.Fields, 0, len(h.Fields)+3)}
	sw.Fields = append(sw.Fields,
		frames.Field{Name: "upgrade", Value: "websocket"},
		frames.Field{Name: "connection", Value: "Upgrade"},
		frames.Field{Name: "sec-websocket-accept", Value: ws.AcceptKey(t.Key)})
	for _, f := range h.Fields {
		if f.Name != "sec-websocket-accept" {
			sw.Fields = append(sw.Fields, f)
		}
	}
	w.buf = h1.AppendResponseHead(w.buf[:0], sw, h1.Body{Kind: h1.BodyNone}, true)
	w.bw.Write(w.buf)
	if err := w.flush(); err != nil {
		return false, err
	}
	ext := h.Fields.Has("sec-websocket-extensions")
	t.rsv1.Store(ext)
	t.decide(true)
	in := ws.Inspector{RSV1: ext}
	closeWith := func(code uint16, reason string) (bool, error) {
		if !in.AtBoundary() || in.Closed() {
			// Mid-frame, a Close of ours would corrupt the stream, and
			// after the backend's Close none may follow: the connection
			// just ends (the client sees 1006).
			w.flush()
			return false, ErrAborted
		}
		w.bw.Write(ws.AppendClose(w.buf[:0], code, reason, false))
		return false, w.flush()
	}
	for {
		f, ok := link.TryRecv()
		if !ok {
			if err := w.flush(); err != nil {
				return false, err
			}
			// A silent tunnel holds no write buffer.
			w.Release()
			var err error
			f, err = link.Recv(t.ctx)
			w.acquire()
			if err != nil {
				var ce *ws.CloseError
				if errors.As(context.Cause(t.ctx), &ce) {
					return closeWith(ce.Code, ce.Reason)
				}
				if t.ctx.Err() != nil {
					return closeWith(ws.CloseGoingAway, "gateway shutting down")
				}
				return closeWith(ws.CloseInternalError, "backend failed")
			}
		}
		switch f.Kind {
		case frames.KindData:
			if err := in.Feed(f.Data, time.Now()); err != nil {
				// The backend broke the framing: nothing more of it goes out.
				link.Consumed(&f)
				return false, ErrAborted
			}
			_, err := w.bw.Write(f.Data)
			end := f.End
			link.Consumed(&f)
			t.Touch(time.Now())
			if err != nil {
				return false, err
			}
			if end {
				if !in.Closed() {
					return closeWith(ws.CloseInternalError, "backend closed the connection")
				}
				return false, w.flush()
			}
		case frames.KindTrailers:
			return closeWith(ws.CloseInternalError, "backend closed the connection")
		case frames.KindReset:
			return closeWith(ws.CloseInternalError, "backend failed")
		default:
			link.Consumed(&f)
		}
	}
}

// Done is closed when the tunnel has ended (or never opened).
func (t *H1Tunnel) Done() <-chan struct{} { return t.ctx.Done() }
