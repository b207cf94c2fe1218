package encode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	bw := bufio.NewWriter(srv)
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
			finished := p.w.Open(1, resp, "GET", h2.InitialWindowSize)
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
