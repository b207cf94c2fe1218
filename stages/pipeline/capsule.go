package pipeline

import (
	"context"
	"io"
	"sync"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/capsule"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// capsuleDown bounds the backend datagrams waiting to become DATAGRAM
// capsules toward an HTTP/2 client, and those held for a capsule boundary.
const capsuleDown = 64

// wantsCapsules reports whether a request is an HTTP/2 client's tunnel that
// speaks the Capsule Protocol (RFC 9297 §3.2: capsule-protocol: ?1) to a
// pool of HTTP/3 backends: its DATAGRAM capsules become HTTP Datagrams,
// and back. Toward any other backend the capsules pass on unchanged, as
// the tunnel's bytes.
func wantsCapsules(st *stages.Stream, req *frames.Head, pool *route.Pool) bool {
	if st.Conn.Proto != "HTTP/2" || req.Protocol == "" || st.Datagrams != nil ||
		req.Fields.Value("capsule-protocol") != "?1" {
		return false
	}
	bs := pool.Backends()
	for _, b := range bs {
		if b.Protocol != "h3" {
			return false
		}
	}
	return len(bs) > 0
}

// capsuleBridge turns an HTTP/2 tunnel's DATAGRAM capsules into the
// stream's datagrams and the backend's datagrams into DATAGRAM capsules.
type capsuleBridge struct {
	d    *stages.Datagrams
	down chan []byte // backend datagrams, for the response
}

// newCapsuleBridge gives st a datagram side channel fed from its capsules.
func newCapsuleBridge(st *stages.Stream) *capsuleBridge {
	b := &capsuleBridge{down: make(chan []byte, capsuleDown)}
	b.d = stages.NewDatagrams(func(f frames.Frame) bool {
		p := append([]byte(nil), f.Data...)
		f.Release()
		if len(p) > frames.MaxDataChunk-16 {
			// A capsule goes out as one Data frame (QUIC datagrams are
			// far smaller than one anyway).
			stages.DatagramDropTooLarge.Inc()
			return false
		}
		select {
		case b.down <- p:
			return true
		default:
			stages.DatagramDropQueueFull.Inc()
			return false
		}
	})
	st.Datagrams = b.d
	return b
}

// splitRequest reads the client's tunnel bytes from src: DATAGRAM capsules
// go to the side channel, every other capsule on in the returned link.
func (b *capsuleBridge) splitRequest(ctx context.Context, src *bus.Link, wg *sync.WaitGroup) *bus.Link {
	dst := bus.NewLink(replayLinkBytes, nil)
	wg.Go(func() {
		var s capsule.Splitter
		var out []byte
		for {
			f, err := src.Recv(ctx)
			if err != nil {
				dst.Close(err)
				return
			}
			if f.Kind != frames.KindData {
				src.Release(f.Len())
				if err := dst.Send(ctx, f); err != nil {
					src.Discard(err)
					return
				}
				continue
			}
			out = out[:0]
			s.Feed(f.Data, func(p []byte) { out = append(out, p...) }, func(p []byte) {
				b.d.ToBackend(frames.Frame{Kind: frames.KindDatagram, Data: p})
			}, stages.DatagramDropTooLarge.Inc)
			end := f.End
			src.Consumed(&f)
			for len(out) > 0 || end {
				k := min(len(out), frames.MaxDataChunk)
				last := k == len(out)
				if err := dst.Send(ctx, frames.CopyData(out[:k], end && last)); err != nil {
					src.Discard(err)
					return
				}
				out = out[k:]
				if last {
					break
				}
			}
			if end {
				dst.Close(io.EOF)
				return
			}
		}
	})
	return dst
}

// nextFrame is one result of the backend response's Next.
type nextFrame struct {
	f   frames.Frame
	err error
}

// capsuleMerge reads the backend's response and places the backend's
// datagrams into it as DATAGRAM capsules, each between two of the
// backend's own capsules, never inside one.
type capsuleMerge struct {
	b     *capsuleBridge
	split capsule.Splitter // follows the backend's capsule boundaries
	held  [][]byte
	in    chan nextFrame
	done  chan struct{}
	wg    sync.WaitGroup
}

// merge starts reading resp; Next then serves the merged response. stop
// ends the reader once resp is closed.
func (b *capsuleBridge) merge(ctx context.Context, resp *upstream.Response) *capsuleMerge {
	m := &capsuleMerge{b: b, in: make(chan nextFrame), done: make(chan struct{})}
	m.wg.Go(func() {
		for {
			f, err := resp.Next(ctx)
			select {
			case m.in <- nextFrame{f, err}:
			case <-m.done:
				f.Release()
				return
			}
			if err != nil || f.End {
				return
			}
		}
	})
	return m
}

// Next returns the next frame of the merged response.
func (m *capsuleMerge) Next(ctx context.Context) (frames.Frame, error) {
	for {
		if len(m.held) > 0 && m.split.AtBoundary() {
			p := m.held[0]
			m.held = m.held[1:]
			return m.capsuleFrame(p), nil
		}
		select {
		case r := <-m.in:
			if r.err == nil && r.f.Kind == frames.KindData {
				m.split.Feed(r.f.Data, func([]byte) {}, func([]byte) {}, func() {})
			}
			return r.f, r.err
		case p := <-m.b.down:
			if m.split.AtBoundary() {
				return m.capsuleFrame(p), nil
			}
			if len(m.held) == capsuleDown {
				stages.DatagramDropQueueFull.Inc()
				continue
			}
			m.held = append(m.held, p)
		case <-ctx.Done():
			return frames.Frame{}, context.Cause(ctx)
		}
	}
}

func (m *capsuleMerge) capsuleFrame(p []byte) frames.Frame {
	return frames.CopyData(capsule.AppendDatagram(make([]byte, 0, 16+len(p)), p), false)
}

// stop ends the reader; call it after the response is closed.
func (m *capsuleMerge) stop() {
	close(m.done)
	m.wg.Wait()
}
