package encode

import (
	"errors"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
)

// writeTunnel writes the 200 that opens an extended CONNECT's tunnel
// (RFC 9220 §3), then relays the backend's bytes in DATA frames; the
// tunnel's clean end is the stream's FIN.
func (w *H3Writer) writeTunnel(h *frames.Head, link *bus.Link) error {
	t := w.Tunnel
	defer t.cancel(nil)
	rh := &frames.Head{Status: 200, ContentLength: -1, Fields: h.Fields}
	if err := w.write(w.head(rh)); err != nil {
		w.Abort(frames.CodeCancel)
		return err
	}
	t.open(h)
	err := relayTunnel(t, link, h3TunnelOut{w})
	switch {
	case errors.Is(err, errTunnelCut):
		w.Abort(frames.CodeUpstream)
		return ErrAborted
	case err != nil:
		w.Abort(frames.CodeCancel)
		return err
	}
	return w.str.Close()
}

// h3TunnelOut writes a tunnel's bytes as DATA frames; QUIC does the
// buffering.
type h3TunnelOut struct{ w *H3Writer }

func (o h3TunnelOut) writeBytes(p []byte) error {
	o.w.buf = h3.AppendDataHeader(o.w.buf[:0], len(p))
	o.w.buf = append(o.w.buf, p...)
	return o.w.write(o.w.buf)
}
func (o h3TunnelOut) flush() error { return nil }
func (o h3TunnelOut) release()     {}
func (o h3TunnelOut) acquire()     {}
