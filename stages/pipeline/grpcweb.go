package pipeline

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"sync"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
	"github.com/expressgateway/expressgateway/stages"
)

// grpcWeb translates one grpc-web call into the gRPC call it stands for
// and back. The actor serves the gRPC call as any other (deadline, health,
// message cap, local errors as gRPC statuses); two pumps at its edges
// change the framing: the response's trailers become the body's trailer
// message, and for grpc-web-text both bodies are base64.
type grpcWeb struct {
	text bool
	ct   string // the response's content-type
	// inner is the stream the actor serves; outer the front's.
	inner, outer *stages.Stream
	wg           sync.WaitGroup
}

// errActorDone closes the response link of an actor that returned without
// closing it (it panicked), so the response pump ends.
var errActorDone = errors.New("pipeline: stream actor returned")

// grpcWebFor rewrites a grpc-web request head into the gRPC call it stands
// for, or returns nil when the request is none (or gRPC-aware proxying is
// off: then grpc-web is proxied as any request).
func grpcWebFor(req *frames.Head, set *grpcSettings) *grpcWeb {
	if set == nil {
		return nil
	}
	text, suffix, ok := grpc.WebCall(req.Fields.Value("content-type"))
	if !ok {
		return nil
	}
	w := &grpcWeb{text: text, ct: "application/grpc-web" + suffix}
	if text {
		w.ct = "application/grpc-web-text" + suffix
		req.ContentLength = -1 // decoding changes the length
		req.Fields.Del("content-length")
	}
	req.Fields.Set("content-type", "application/grpc"+suffix)
	req.Fields.Set("te", "trailers")
	return w
}

// wrap starts the pumps around st and returns the stream the actor
// serves; st's request head is already read.
func (w *grpcWeb) wrap(ctx context.Context, st *stages.Stream) *stages.Stream {
	w.outer = st
	w.inner = &stages.Stream{Req: st.Req, Resp: bus.NewLink(bus.DefaultStreamBytes, nil), Conn: st.Conn, KeepAlive: st.KeepAlive, Early: st.Early}
	if w.text {
		w.inner.Req = bus.NewLink(bus.DefaultStreamBytes, nil)
		w.wg.Go(func() { w.decodeRequest(ctx) })
	}
	w.wg.Go(func() { w.encodeResponse(ctx) })
	return w.inner
}

// done ends the pumps once the actor has returned.
func (w *grpcWeb) done() {
	w.inner.Resp.Close(errActorDone) // a no-op when the actor closed it
	w.inner.Req.Discard(io.EOF)
	w.wg.Wait()
	w.outer.Req.Discard(io.EOF)
	w.outer.ReqBytes.Store(w.inner.ReqBytes.Load())
}

// decodeRequest base64-decodes a grpc-web-text request body onto the
// actor's request link.
func (w *grpcWeb) decodeRequest(ctx context.Context) {
	in, out := w.outer.Req, w.inner.Req
	defer in.Discard(io.EOF)
	var d grpc.WebTextDecoder
	for {
		f, err := in.Recv(ctx)
		if err != nil {
			out.Close(err)
			return
		}
		if f.Kind != frames.KindData {
			n := f.Len()
			err := out.Send(ctx, f)
			in.Release(n)
			if err != nil || f.End || f.Kind == frames.KindReset {
				out.Close(io.EOF)
				return
			}
			continue
		}
		g := frames.Alloc(len(f.Data)) // base64 never decodes longer
		g.Data, err = d.Decode(g.Data[:0], f.Data)
		end := f.End
		in.Consumed(&f)
		if err == nil && end {
			err = d.Close()
		}
		if err != nil {
			g.Release()
			// A body that is not base64 is cut: the backend never sees it
			// complete.
			out.Send(ctx, frames.ResetFrame(frames.CodeProtocol))
			out.Close(&frames.ResetError{Code: frames.CodeProtocol})
			return
		}
		g.End = end
		w.inner.ReqBytes.Add(int64(len(g.Data)))
		if out.Send(ctx, g) != nil {
			return
		}
		if end {
			out.Close(io.EOF)
			return
		}
	}
}

// encodeResponse moves the actor's response to the front in grpc-web's
// form: the content-type of the call, trailers as the body's last message,
// and base64 throughout for grpc-web-text. A trailers-only response stays
// one head (grpc-web reads the status from the headers then).
func (w *grpcWeb) encodeResponse(ctx context.Context) {
	in, out := w.inner.Resp, w.outer.Resp
	defer in.Discard(io.EOF)
	for {
		f, err := in.Recv(ctx)
		if err != nil {
			out.Close(err)
			return
		}
		switch f.Kind {
		case frames.KindHeaders:
			if h := f.Head; h.Status >= 200 && grpc.IsCall(h.Fields.Value("content-type")) {
				h.Fields.Set("content-type", w.ct)
				if !f.End {
					h.ContentLength = -1 // the trailer message, and base64, change it
				}
			}
		case frames.KindData:
			if w.text && len(f.Data) > 0 {
				end := f.End
				err := w.sendText(ctx, out, f.Data, end)
				in.Consumed(&f)
				if err != nil {
					return
				}
				if end {
					out.Close(io.EOF)
					return
				}
				continue
			}
		case frames.KindTrailers:
			b := grpc.AppendWebTrailers(nil, f.Head.Fields)
			in.Consumed(&f)
			if w.text {
				w.sendText(ctx, out, b, true)
			} else {
				w.sendBytes(ctx, out, b, true)
			}
			out.Close(io.EOF)
			return
		}
		n, end := f.Len(), f.End || f.Kind == frames.KindReset
		err = out.Send(ctx, f)
		in.Release(n)
		if err != nil {
			return
		}
		if end {
			out.Close(io.EOF)
			return
		}
	}
}

// sendText sends p base64-encoded (each chunk padded on its own, as
// grpc-web-text allows) in frames of at most frames.MaxDataChunk.
func (w *grpcWeb) sendText(ctx context.Context, out *bus.Link, p []byte, end bool) error {
	const in = frames.MaxDataChunk / 4 * 3
	for len(p) > 0 {
		k := min(len(p), in)
		f := frames.Alloc(base64.StdEncoding.EncodedLen(k))
		base64.StdEncoding.Encode(f.Data, p[:k])
		p = p[k:]
		f.End = end && len(p) == 0
		if err := out.Send(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// sendBytes sends p as it is, in frames of at most frames.MaxDataChunk.
func (w *grpcWeb) sendBytes(ctx context.Context, out *bus.Link, p []byte, end bool) error {
	for len(p) > 0 {
		k := min(len(p), frames.MaxDataChunk)
		if err := out.Send(ctx, frames.CopyData(p[:k], end && k == len(p))); err != nil {
			return err
		}
		p = p[k:]
	}
	return nil
}
