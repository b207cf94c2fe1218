package encode

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages"
)

// A writer holds its write buffer and head scratch only while it writes: once
// a response is out and Release runs, an idle keep-alive connection holds
// neither, and the next response takes them again.
func TestH1Writer_HoldsNoBuffersOnceReleased(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	w := NewH1Writer(srv, 0)
	br := bufio.NewReader(cli)
	for i := range 2 {
		resp := bus.NewLink(bus.DefaultStreamBytes, nil)
		h := &frames.Head{Status: 200, ContentLength: 2}
		resp.Send(context.Background(), frames.HeadersFrame(h, false))
		resp.Send(context.Background(), frames.CopyData([]byte("ok"), true))
		x := &H1Exchange{Stream: &stages.Stream{Resp: resp}, Method: "GET", KeepAlive: true}
		done := make(chan error, 1)
		go func() {
			r, err := http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, r.Body)
			}
			done <- err
		}()
		keep, err := w.WriteResponse(context.Background(), x)
		if err != nil || !keep {
			t.Fatalf("response %d: keep-alive %v, %v", i, keep, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if w.bw == nil || w.buf == nil {
			t.Fatalf("response %d: the writer wrote without its buffers", i)
		}
		w.Release()
		if w.bw != nil || w.buf != nil || w.bufs != nil {
			t.Fatalf("response %d: the writer holds buffers after Release", i)
		}
	}
}
