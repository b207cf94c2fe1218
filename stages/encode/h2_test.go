package encode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
)

// h2Peer is the client end of a writer under test: it reads what the
// writer sends over a net.Pipe.
type h2Peer struct {
	w    *H2Writer
	conn net.Conn
	fr   *http2.Framer
	ran  chan error // why the writer stopped on its own (a panic included)
}

func newH2Peer(t *testing.T) *h2Peer {
	t.Helper()
	srv, cli := net.Pipe()
	bw := h2.NewBufWriter(srv)
	codec := h2.NewConn(h2.RoleServer, bw, bufio.NewReader(srv), h2.DefaultSettings())
	p := &h2Peer{
		conn: cli,
		fr:   http2.NewFramer(io.Discard, cli),
		ran:  make(chan error, 1),
	}
	p.w = NewH2Writer(srv, bw, h2.NewWriter(codec), H2WriterConfig{
		WriteTimeout: 10 * time.Second,
		ConnWindow:   h2.InitialWindowSize,
		OnStop: func(err error) {
			if err == nil {
				err = errors.New("writer stopped")
			}
			p.ran <- err
		},
	})
	p.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	t.Cleanup(func() {
		cli.Close()
		p.w.Shutdown()
		srv.Close()
		if err := p.w.Err(); errors.Is(err, errWriterPanic) {
			t.Errorf("writer: %v", err)
		}
	})
	return p
}

// readStream reads frames until stream id ends and returns the status and
// body the client got. A writer that panics fails the test.
func (p *h2Peer) readStream(t *testing.T, id uint32) (status string, body []byte) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		for {
			f, err := p.fr.ReadFrame()
			if err != nil {
				got <- err
				return
			}
			if f.Header().StreamID != id {
				continue
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				status = f.PseudoValue("status")
				if f.StreamEnded() {
					got <- nil
					return
				}
			case *http2.DataFrame:
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					got <- nil
					return
				}
			case *http2.RSTStreamFrame:
				got <- fmt.Errorf("stream reset: %v", f.ErrCode)
				return
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading stream %d: %v", id, err)
		}
	case err := <-p.ran:
		p.ran <- err // for Cleanup
		t.Fatalf("writer stopped before stream %d ended: %v", id, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("stream %d never ended", id)
	}
	return status, body
}

// The status the writer makes up for a response that failed before its
// head (the link closed, or a reset came first) was never on the link:
// writing it must return no link credit. It used to, and a link holding
// less than that body panicked the writer ("link released more than was
// sent"); one holding more gave back its credit before its frames went
// out.
func TestH2Writer_LocalAnswerReturnsNoLinkCredit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   func(ctx context.Context, resp *bus.Link)
		status string
	}{
		{"stream context ends first", func(ctx context.Context, resp *bus.Link) {
			// The connection ends while the handler waits for its backend.
			resp.Close(context.Canceled)
		}, "502"},
		{"link closes without a head", func(ctx context.Context, resp *bus.Link) {
			resp.Close(errors.New("handler gave up"))
		}, "502"},
		{"reset before the head", func(ctx context.Context, resp *bus.Link) {
			resp.Send(ctx, frames.ResetFrame(frames.CodeTimeout))
			resp.Close(io.EOF)
		}, "504"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newH2Peer(t)
			conn := bus.NewBudget(1<<20, nil)
			resp := bus.NewLink(64<<10, conn)
			finished := p.w.Open(1, resp, "GET", false, h2.InitialWindowSize)
			tc.fail(context.Background(), resp)
			status, body := p.readStream(t, 1)
			if status != tc.status || len(body) == 0 {
				t.Errorf("got status %q body %q, want %s with a text body", status, body, tc.status)
			}
			select {
			case <-finished:
			case err := <-p.ran:
				p.ran <- err // for Cleanup
				t.Fatalf("writer stopped before the stream finished: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("stream never finished")
			}
			p.w.Close(1)
			if h, u := resp.Held(), conn.Used(); h != 0 || u != 0 {
				t.Errorf("after the stream: link holds %d, connection budget %d; want 0, 0", h, u)
			}
		})
	}
}

// wireFrame is what the peer saw of one frame of a stream.
type wireFrame struct {
	kind   string // HEADERS, DATA, RST_STREAM
	end    bool
	data   string
	fields map[string]string
	code   http2.ErrCode
}

// streamFrames reads frames until stream id ends (END_STREAM or
// RST_STREAM) and returns those of the stream, in order.
func (p *h2Peer) streamFrames(t *testing.T, id uint32) []wireFrame {
	t.Helper()
	var got []wireFrame
	done := make(chan error, 1)
	go func() {
		for {
			f, err := p.fr.ReadFrame()
			if err != nil {
				done <- err
				return
			}
			if f.Header().StreamID != id {
				continue
			}
			var wf wireFrame
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				wf = wireFrame{kind: "HEADERS", end: f.StreamEnded(), fields: map[string]string{}}
				for _, hf := range f.Fields {
					wf.fields[hf.Name] = hf.Value
				}
			case *http2.DataFrame:
				wf = wireFrame{kind: "DATA", end: f.StreamEnded(), data: string(f.Data())}
			case *http2.RSTStreamFrame:
				wf = wireFrame{kind: "RST_STREAM", end: true, code: f.ErrCode}
			default:
				continue
			}
			got = append(got, wf)
			if wf.end {
				done <- nil
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reading stream %d: %v (so far %+v)", id, err, got)
		}
	case err := <-p.ran:
		p.ran <- err
		t.Fatalf("writer stopped before stream %d ended: %v", id, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("stream %d never ended", id)
	}
	return got
}

func grpcHead(end bool) frames.Frame {
	h := &frames.Head{Status: 200, ContentLength: -1}
	h.Fields.Add("content-type", "application/grpc")
	if end {
		h.Fields.Add("grpc-status", "5")
		h.Fields.Add("grpc-message", "not%20found")
	}
	return frames.HeadersFrame(h, end)
}

// A trailers-only response (gRPC's answer for an error: a head with
// grpc-status that ends the stream) is one HEADERS frame with END_STREAM,
// whether the head carries the end itself or an empty end follows it; an
// empty DATA after the head reads as a broken call to grpc-go.
func TestH2Writer_TrailersOnlyIsOneHeadersFrame(t *testing.T) {
	for name, fs := range map[string]func() []frames.Frame{
		"head with its end":      func() []frames.Frame { return []frames.Frame{grpcHead(true)} },
		"head then an empty end": func() []frames.Frame { f := grpcHead(true); f.End = false; return []frames.Frame{f, frames.EndFrame()} },
	} {
		t.Run(name, func(t *testing.T) {
			p := newH2Peer(t)
			resp := bus.NewLink(64<<10, nil)
			for _, f := range fs() {
				resp.Send(context.Background(), f)
			}
			resp.Close(io.EOF)
			p.w.Open(1, resp, "POST", false, h2.InitialWindowSize)
			got := p.streamFrames(t, 1)
			if len(got) != 1 || got[0].kind != "HEADERS" || !got[0].end {
				t.Fatalf("stream frames %+v, want one HEADERS with END_STREAM", got)
			}
			if got[0].fields["grpc-status"] != "5" || got[0].fields["grpc-message"] != "not%20found" {
				t.Errorf("fields %v, want grpc-status and grpc-message unchanged", got[0].fields)
			}
		})
	}
}

// Trailers after DATA go as a trailing HEADERS with END_STREAM; the DATA
// before them does not end the stream.
func TestH2Writer_TrailersAfterDataEndTheStream(t *testing.T) {
	p := newH2Peer(t)
	resp := bus.NewLink(64<<10, nil)
	ctx := context.Background()
	resp.Send(ctx, grpcHead(false))
	resp.Send(ctx, frames.CopyData([]byte("msg"), false))
	resp.Send(ctx, frames.TrailersFrame(frames.Fields{{Name: "grpc-status", Value: "0"}}))
	resp.Close(io.EOF)
	p.w.Open(1, resp, "POST", false, h2.InitialWindowSize)
	got := p.streamFrames(t, 1)
	want := []string{"HEADERS", "DATA", "HEADERS"}
	if len(got) != len(want) {
		t.Fatalf("stream frames %+v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].kind != w || got[i].end != (i == len(want)-1) {
			t.Fatalf("frame %d: %+v, want %s with END_STREAM only on the last", i, got[i], w)
		}
	}
	if got[1].data != "msg" || got[2].fields["grpc-status"] != "0" {
		t.Errorf("data %q, trailers %v", got[1].data, got[2].fields)
	}
}

// A reset after the head reaches the client with the code it carries,
// mapped once by frames/h2 (a backend's CANCEL stays CANCEL).
func TestH2Writer_ResetKeepsItsCode(t *testing.T) {
	for _, tc := range []struct {
		code frames.ErrCode
		want http2.ErrCode
	}{
		{frames.CodeCancel, http2.ErrCodeCancel},
		{frames.CodeRefused, http2.ErrCodeRefusedStream},
		{frames.CodeUpstream, http2.ErrCodeInternal},
		{frames.CodeCalm, http2.ErrCodeEnhanceYourCalm},
	} {
		p := newH2Peer(t)
		resp := bus.NewLink(64<<10, nil)
		ctx := context.Background()
		resp.Send(ctx, grpcHead(false))
		resp.Send(ctx, frames.ResetFrame(tc.code))
		resp.Close(&frames.ResetError{Code: tc.code})
		p.w.Open(1, resp, "GET", false, h2.InitialWindowSize)
		got := p.streamFrames(t, 1)
		if last := got[len(got)-1]; last.kind != "RST_STREAM" || last.code != tc.want {
			t.Errorf("%v: stream frames %+v, want RST_STREAM %v last", tc.code, got, tc.want)
		}
	}
}

// A large response crosses the writer intact and in order, within the
// windows the peer grants as it reads (the reader's WindowUpdate calls),
// and every byte of link credit comes back.
func TestH2Writer_LargeBodyArrivesWhole(t *testing.T) {
	p := newH2Peer(t)
	conn := bus.NewBudget(1<<20, nil)
	resp := bus.NewLink(256<<10, conn)
	p.w.Open(1, resp, "GET", false, h2.InitialWindowSize)
	const total = 8 << 20
	go func() {
		ctx := context.Background()
		resp.Send(ctx, frames.HeadersFrame(&frames.Head{Status: 200, ContentLength: total}, false))
		var seq byte
		for sent := 0; sent < total; {
			n := min(1+sent%frames.MaxDataChunk, total-sent) // every size from 1 byte to a full chunk
			f := frames.Alloc(n)
			for i := range f.Data {
				f.Data[i] = seq
				seq++
			}
			sent += n
			f.End = sent == total
			if resp.Send(ctx, f) != nil {
				return
			}
		}
		resp.Close(io.EOF)
	}()
	var got []byte
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		got = append(got, d.Data()...)
		if n := uint32(len(d.Data())); n > 0 {
			p.w.WindowUpdate(0, n)
			p.w.WindowUpdate(1, n)
		}
		if d.StreamEnded() {
			break
		}
	}
	if len(got) != total {
		t.Fatalf("got %d bytes, want %d", len(got), total)
	}
	for i := range got {
		if got[i] != byte(i) {
			t.Fatalf("byte %d is %d, want %d: out of order or corrupt", i, got[i], byte(i))
		}
	}
}

// A gRPC call whose response fails before its head gets the gRPC form of
// the local answer: one HEADERS with END_STREAM, content-type
// application/grpc and the grpc-status the HTTP status maps to, never a
// text/plain body a gRPC client would read as UNKNOWN.
func TestH2Writer_GRPCCallFailingBeforeItsHeadGetsAGRPCStatus(t *testing.T) {
	p := newH2Peer(t)
	resp := bus.NewLink(64<<10, nil)
	p.w.Open(1, resp, "POST", true, h2.InitialWindowSize)
	resp.Close(errors.New("handler gave up"))
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || h.StreamID != 1 {
			if _, data := f.(*http2.DataFrame); data {
				t.Fatal("a body after the head")
			}
			continue
		}
		fields := map[string]string{}
		for _, hf := range h.Fields {
			fields[hf.Name] = hf.Value
		}
		if !h.StreamEnded() || fields[":status"] != "200" || fields["content-type"] != "application/grpc" || fields["grpc-status"] != "14" || !strings.Contains(fields["grpc-message"], "502") {
			t.Fatalf("head %v (ended %v), want a trailers-only UNAVAILABLE", fields, h.StreamEnded())
		}
		return
	}
}
