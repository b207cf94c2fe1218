package encode

import (
	"context"
	"errors"
	"io"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
)

// RelayH2Tunnel is the response side of an HTTP/2 extended CONNECT
// (RFC 8441 §5): it takes the stream actor's response from from and hands
// the connection's writer, on to, the frames it sends. A tunnel's head
// becomes a 200 and the backend's bytes DATA frames, checked frame header
// by frame header as on every front; the tunnel's clean end is END_STREAM,
// a cut one RST_STREAM. Any other answer goes to the writer as it is.
//
// The writer of an HTTP/2 connection serves every stream from one
// goroutine and never blocks on one stream's link, so the tunnel's relay,
// which waits on the backend and on the reader's Close, runs here, one
// goroutine per tunnel; to's budget is the backpressure toward the client.
func RelayH2Tunnel(ctx context.Context, t *Tunnel, from, to *bus.Link) {
	defer t.decide(false)
	defer from.Discard(io.EOF)
	f, err := from.Recv(ctx)
	if err != nil {
		to.Close(err) // the writer answers a head that never came with a status
		return
	}
	if h := f.Head; f.Kind != frames.KindHeaders || h == nil || h.Protocol == "" || h.Status/100 != 2 || f.End {
		forward(ctx, f, from, to)
		return
	}
	defer t.cancel(nil)
	h := f.Head
	from.Consumed(&f)
	rh := &frames.Head{Status: 200, ContentLength: -1, Fields: h.Fields}
	if to.Send(ctx, frames.HeadersFrame(rh, false)) != nil {
		return
	}
	t.open(h)
	switch err := relayTunnel(t, from, linkOut{ctx, to}); {
	case err == nil:
		if to.Send(ctx, frames.EndFrame()) == nil {
			to.Close(io.EOF)
		}
	case errors.Is(err, errTunnelCut):
		if to.Send(ctx, frames.ResetFrame(frames.CodeUpstream)) == nil {
			to.Close(&frames.ResetError{Code: frames.CodeUpstream})
		}
	default:
		to.Close(err)
	}
}

// forward moves an ordinary response from from to to, frame by frame; a
// DATA payload changes hands without a copy, its budget returned to from
// once to holds it.
func forward(ctx context.Context, f frames.Frame, from, to *bus.Link) {
	for {
		n, end := f.Len(), f.End || f.Kind == frames.KindReset || f.Kind == frames.KindTrailers
		if err := to.Send(ctx, f); err != nil {
			from.Release(n)
			return
		}
		from.Release(n)
		if end {
			to.Close(io.EOF)
			return
		}
		var err error
		if f, err = from.Recv(ctx); err != nil {
			to.Close(err)
			return
		}
	}
}

// linkOut writes a tunnel's bytes as DATA frames on the writer's link.
type linkOut struct {
	ctx context.Context
	to  *bus.Link
}

func (o linkOut) writeBytes(p []byte) error {
	for len(p) > 0 {
		k := min(len(p), frames.MaxDataChunk)
		if err := o.to.Send(o.ctx, frames.CopyData(p[:k], false)); err != nil {
			return err
		}
		p = p[k:]
	}
	return nil
}
func (linkOut) flush() error { return nil }
func (linkOut) release()     {}
func (linkOut) acquire()     {}
