package encode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
)

// Tunnel is what a front's reader and writer share for one WebSocket
// tunnel (an H1 upgrade, an H3 extended CONNECT): the writer tells the
// reader whether the backend accepted it, and the reader, which sees the
// client's frames, can end it with a Close that the writer sends.
type Tunnel struct {
	Key string // the client's Sec-WebSocket-Key (HTTP/1.1 only)
	// End records how the tunnel ended; the front hands it to the actor
	// (stages.Stream.Tunnel).
	End *stages.TunnelEnd

	once   sync.Once
	opened chan bool // the writer's verdict, sent once
	// ctx bounds the writer's wait for the backend's bytes; the reader
	// cancels it with a *ws.CloseError for the writer to send that Close.
	ctx    context.Context
	cancel context.CancelCauseFunc
	rsv1   atomic.Bool  // the backend accepted an extension (RSV1 in use)
	last   atomic.Int64 // unix nanoseconds of the last byte relayed either way
}

// NewTunnel returns the shared state of a tunnel whose writer runs under
// ctx.
func NewTunnel(ctx context.Context, key string) *Tunnel {
	t := &Tunnel{Key: key, End: stages.NewTunnelEnd(), opened: make(chan bool, 1)}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	t.Touch(time.Now())
	return t
}

func (t *Tunnel) decide(ok bool) {
	t.once.Do(func() {
		t.opened <- ok
		if !ok {
			t.cancel(nil)
			t.End.Done()
		}
	})
}

// Opened waits for the writer's verdict: true once the tunnel's head went
// out, false when the response was anything else.
func (t *Tunnel) Opened(ctx context.Context) bool {
	select {
	case ok := <-t.opened:
		return ok
	case <-ctx.Done():
		return false
	}
}

// Close has the writer send the client a Close with e's code and end the
// tunnel.
func (t *Tunnel) Close(e *ws.CloseError) {
	t.End.Close(e.Code)
	t.cancel(e)
}

// Saw records the close code of a Close the inspector has seen go by.
func (t *Tunnel) Saw(in *ws.Inspector) {
	if in.Closed() {
		t.End.Close(in.CloseCode())
	}
}

// Done is closed when the tunnel has ended (or never opened).
func (t *Tunnel) Done() <-chan struct{} { return t.ctx.Done() }

// Touch records that bytes went by at now.
func (t *Tunnel) Touch(now time.Time) { t.last.Store(now.UnixNano()) }

// LastActive is when bytes last went by, either way.
func (t *Tunnel) LastActive() time.Time { return time.Unix(0, t.last.Load()) }

// RSV1 reports whether the client's frames may set RSV1: the backend
// accepted an extension (permessage-deflate). Valid once Opened is true.
func (t *Tunnel) RSV1() bool { return t.rsv1.Load() }

// open records the backend's accepted head and tells the reader.
func (t *Tunnel) open(h *frames.Head) {
	t.rsv1.Store(h.Fields.Has("sec-websocket-extensions"))
	t.decide(true)
}

// tunnelOut is how a front writes a tunnel's bytes: in its framing
// (raw on HTTP/1.1, DATA frames on HTTP/3), buffered until flush; release
// lets go of buffers while the tunnel is silent.
type tunnelOut interface {
	writeBytes(p []byte) error
	flush() error
	release()
	acquire()
}

// errTunnelCut says the tunnel can only be cut, with no Close of ours:
// the backend broke its framing, or a Close cannot be placed.
var errTunnelCut = errors.New("encode: tunnel cut")

// relayTunnel moves the backend's bytes from link to out as they come,
// checking their framing, until the backend ends, fails, or the reader
// closes the tunnel. It returns nil when the backend's own Close went by
// and the stream may end cleanly, errTunnelCut when it must be cut, a
// write error, or after writing the Close the gateway owes the client.
func relayTunnel(t *Tunnel, link *bus.Link, out tunnelOut) error {
	defer t.End.Done()
	r := tunnelRelay{t: t, link: link, out: out, in: ws.Inspector{RSV1: t.RSV1()}}
	for {
		f, ok := link.TryRecv()
		if !ok {
			if err := out.flush(); err != nil {
				return err
			}
			out.release()
			var err error
			f, err = link.Recv(t.ctx)
			out.acquire()
			if err != nil {
				return r.waitFailed()
			}
		}
		if done, err := r.frame(f); done {
			return err
		}
	}
}

// tunnelRelay is relayTunnel's state, shared with the detached relay of
// an H1 tunnel (h1_tunnel.go).
type tunnelRelay struct {
	t    *Tunnel
	link *bus.Link
	out  tunnelOut
	in   ws.Inspector
}

// closeWith ends the tunnel with a Close of ours, when one can be placed.
func (r *tunnelRelay) closeWith(code uint16, reason string) error {
	if !r.in.AtBoundary() || r.in.Closed() {
		// Mid-frame, a Close of ours would corrupt the stream, and
		// after the backend's Close none may follow: cut (the client
		// sees 1006).
		r.out.flush()
		return errTunnelCut
	}
	r.t.End.Close(code)
	if err := r.out.writeBytes(ws.AppendClose(nil, code, reason, false)); err != nil {
		return err
	}
	return r.out.flush()
}

// waitFailed ends the relay whose wait for the backend's bytes failed: the
// reader closed the tunnel (its Close goes out), the gateway is going
// away, or the backend's side ended without its Close.
func (r *tunnelRelay) waitFailed() error {
	var ce *ws.CloseError
	if errors.As(context.Cause(r.t.ctx), &ce) {
		return r.closeWith(ce.Code, ce.Reason)
	}
	if r.t.ctx.Err() != nil {
		return r.closeWith(ws.CloseGoingAway, "gateway shutting down")
	}
	return r.closeWith(ws.CloseInternalError, "backend failed")
}

// frame relays one frame of the backend's; done means the relay is over,
// with err its result.
func (r *tunnelRelay) frame(f frames.Frame) (done bool, err error) {
	t, link, out := r.t, r.link, r.out
	switch f.Kind {
	case frames.KindData:
		if err := r.in.Feed(f.Data, time.Now()); err != nil {
			// The backend broke the framing: nothing more of it goes out.
			link.Consumed(&f)
			return true, errTunnelCut
		}
		t.Saw(&r.in)
		var err error
		if len(f.Data) > 0 {
			err = out.writeBytes(f.Data)
		}
		end := f.End
		link.Consumed(&f)
		t.Touch(time.Now())
		if err != nil {
			return true, err
		}
		if end {
			if !r.in.Closed() {
				return true, r.closeWith(ws.CloseInternalError, "backend closed the connection")
			}
			return true, out.flush()
		}
	case frames.KindTrailers:
		return true, r.closeWith(ws.CloseInternalError, "backend closed the connection")
	case frames.KindReset:
		var ce *ws.CloseError
		if errors.As(context.Cause(t.ctx), &ce) {
			// The reader closed the tunnel and cut the backend's side
			// for it: its Close is the one owed, not the cut's.
			return true, r.closeWith(ce.Code, ce.Reason)
		}
		if t.ctx.Err() != nil {
			// The backend was cut because the gateway is going away
			// (a drain's deadline cancels the whole tree at once).
			return true, r.closeWith(ws.CloseGoingAway, "gateway shutting down")
		}
		return true, r.closeWith(ws.CloseInternalError, "backend failed")
	default:
		link.Consumed(&f)
	}
	return false, nil
}
