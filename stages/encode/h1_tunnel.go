package encode

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/frames/ws"
)

// writeTunnel writes the 101 for an accepted upgrade (RFC 6455 §4.2.2,
// the accept computed from the client's key), then relays the backend's
// bytes raw. The connection never carries another request.
func (w *H1Writer) writeTunnel(x *H1Exchange, h *frames.Head, link *bus.Link) (bool, error) {
	t := x.Tunnel
	detached := false
	defer func() {
		if !detached {
			t.cancel(nil)
		}
	}()
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
	t.open(h)
	if x.Owner != nil {
		detached = true
		x.Owner.Detach()
		r := &h1Relay{tunnelRelay: tunnelRelay{t: t, link: link, out: h1TunnelOut{w}, in: ws.Inspector{RSV1: t.RSV1()}}, owner: x.Owner}
		r.state.Store(relayRunning)
		r.stop = context.AfterFunc(t.ctx, r.kick)
		link.Notify(r)
		go r.pump()
		return false, ErrDetached
	}
	switch err := relayTunnel(t, link, h1TunnelOut{w}); {
	case errors.Is(err, errTunnelCut):
		return false, ErrAborted
	default:
		return false, err
	}
}

// h1TunnelOut writes a tunnel's bytes raw on the connection.
type h1TunnelOut struct{ w *H1Writer }

func (o h1TunnelOut) writeBytes(p []byte) error {
	_, err := o.w.bw.Write(p)
	return err
}
func (o h1TunnelOut) flush() error { return o.w.flush() }
func (o h1TunnelOut) release()     { o.w.Release() }
func (o h1TunnelOut) acquire()     { o.w.acquire() }

// TunnelOwner is what a tunnel's detached relay reports to: Detach runs
// before WriteResponse returns ErrDetached, Done once the tunnel is over,
// from the relay's goroutine, with what WriteResponse would have returned.
type TunnelOwner interface {
	Detach()
	Done(keepAlive bool, err error)
	// Panicked is told of a panic in the relay (Done follows).
	Panicked(v any)
}

// ErrDetached is WriteResponse's answer for a tunnel whose relay went on
// without the caller's goroutine (H1Exchange.Owner).
var ErrDetached = errors.New("encode: tunnel relay detached")

// The states of a detached relay.
const (
	relayParked int32 = iota // no goroutine: the backend is silent
	relayRunning
	relayOver
)

// h1Relay is the backend-to-client side of an H1 tunnel without a parked
// goroutine: a goroutine runs while the backend's bytes (or the link's
// close, or the tunnel's end) are there to handle and exits when the link
// runs dry; the link's notifier and an AfterFunc on the tunnel's context
// start the next. An idle tunnel then costs no writer goroutine.
type h1Relay struct {
	tunnelRelay
	owner TunnelOwner
	state atomic.Int32
	stop  func() bool // unregisters the context's wake-up
}

// LinkReady implements bus.Notifier.
func (r *h1Relay) LinkReady() { r.kick() }

// kick starts a goroutine for a parked relay.
func (r *h1Relay) kick() {
	if r.state.CompareAndSwap(relayParked, relayRunning) {
		go r.resume()
	}
}

func (r *h1Relay) resume() {
	r.out.acquire()
	r.pump()
}

// pump relays what the link holds, then parks (or ends the tunnel).
func (r *h1Relay) pump() {
	defer func() {
		if v := recover(); v != nil {
			r.owner.Panicked(v)
			if r.state.Load() != relayOver { // (not a panic of the owner's Done)
				r.end(fmt.Errorf("encode: tunnel relay panicked: %v", v))
			}
		}
	}()
	for {
		// The cause is read before the frame: a link closed by then holds
		// all its frames already, so an empty one is over.
		cause := r.link.Cause()
		f, ok := r.link.TryRecv()
		if !ok {
			if cause != nil || r.t.ctx.Err() != nil {
				r.end(r.waitFailed())
				return
			}
			if err := r.out.flush(); err != nil {
				r.end(err)
				return
			}
			r.out.release()
			r.state.Store(relayParked)
			// What came since TryRecv found the link empty woke no one:
			// Notify calls LinkReady at once for a link holding frames or
			// closed, and the context is looked at again.
			r.link.Notify(r)
			if r.t.ctx.Err() != nil {
				r.kick()
			}
			return
		}
		if done, err := r.frame(f); done {
			r.end(err)
			return
		}
	}
}

// end finishes the tunnel and tells the owner, as the blocking relay's
// return does.
func (r *h1Relay) end(err error) {
	r.state.Store(relayOver)
	r.link.Notify(nil)
	r.stop()
	r.t.End.Done()
	r.t.cancel(nil)
	if errors.Is(err, errTunnelCut) {
		err = ErrAborted
	}
	r.owner.Done(false, err)
}
