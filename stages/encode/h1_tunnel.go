package encode

import (
	"errors"

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
	t.open(h)
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
