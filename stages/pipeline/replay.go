package pipeline

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/route"
)

// replayLinkBytes is the budget of one try's body link. The client's link
// gets its credit back as frames move on to the try's, so this bounds what
// the tee adds to a stream's buffered bytes.
const replayLinkBytes = 4 * frames.MaxDataChunk

// errTryOver discards the body link of a try that is over.
var errTryOver = errors.New("pipeline: try over")

// replayBody feeds a request body to successive tries of one request, so
// that a small body can be sent again to another backend when the first
// provably never processed it. Each try gets its own link, fed by a pump
// (copyBody) that first re-sends what earlier tries took, then streams the
// rest from the client's link, keeping a copy of up to limit bytes. Past
// the limit the copy is dropped and the body is lost to retries.
//
// The fields below are the pump's while it runs; the stream actor reads
// them only after stop has waited for it.
type replayBody struct {
	src   *bus.Link
	limit int64

	kept     []byte
	trailers frames.Fields
	ended    bool // the client's body is over (End or trailers kept)
	lost     bool // bytes passed that are not kept, or the body failed

	link   *bus.Link
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// next stops the previous try's pump and returns the body link of a new
// try, whose pump runs until the body is over or stop is called.
func (r *replayBody) next(ctx context.Context) *bus.Link {
	r.stop()
	pctx, cancel := context.WithCancel(ctx)
	r.link, r.cancel = bus.NewLink(replayLinkBytes, nil), cancel
	link := r.link
	r.wg.Go(func() { r.copyBody(pctx, link) })
	return link
}

// stop ends the current try's pump and drops its link, so that a
// transport still reading it stops. A frame the pump had taken from the
// client and not yet handed on is kept (when within the limit) and goes
// to the next try.
func (r *replayBody) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.link.Discard(errTryOver)
	r.cancel, r.link = nil, nil
}

// state is what a retry could send again; call it after stop.
func (r *replayBody) state() route.Body {
	if r.lost {
		return route.BodyLost
	}
	return route.BodyHeld
}

// copyBody is the pump of one try.
func (r *replayBody) copyBody(ctx context.Context, link *bus.Link) {
	for off := 0; off < len(r.kept); {
		n := min(len(r.kept)-off, frames.MaxDataChunk)
		last := off+n == len(r.kept)
		if link.Send(ctx, frames.CopyData(r.kept[off:off+n], last && r.ended && r.trailers == nil)) != nil {
			return
		}
		off += n
	}
	if r.ended {
		switch {
		case r.trailers != nil:
			link.Send(ctx, frames.TrailersFrame(append(frames.Fields(nil), r.trailers...)))
		case len(r.kept) == 0:
			link.Send(ctx, frames.EndFrame())
		}
		link.Close(io.EOF)
		return
	}
	for {
		f, err := r.src.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				// The client's link closed without an end: pass the
				// failure on as it came.
				r.lost = true
				link.Close(r.src.Cause())
			}
			return
		}
		n := f.Len()
		switch f.Kind {
		case frames.KindData:
			r.keep(f.Data)
			r.ended = f.End
		case frames.KindTrailers:
			r.trailers = append(frames.Fields(nil), f.Head.Fields...)
			r.ended = true
		case frames.KindReset:
			r.lost = true
		}
		over := r.ended || f.Kind == frames.KindReset
		err = link.Send(ctx, f)
		// The payload moved on to the try's link, whose consumer releases
		// it; the client's link gets its credit back now.
		r.src.Release(n)
		if err != nil {
			return
		}
		if over {
			link.Close(io.EOF)
			return
		}
	}
}

// keep copies p into the held body, or drops the copy once it would pass
// the limit.
func (r *replayBody) keep(p []byte) {
	if r.lost {
		return
	}
	if int64(len(r.kept)+len(p)) > r.limit {
		r.lost, r.kept = true, nil
		return
	}
	r.kept = append(r.kept, p...)
}
