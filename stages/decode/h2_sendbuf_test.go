package decode

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
)

// fillHandler sends a response in 4 KiB DATA frames until a send blocks
// (a send that has not gone through after blockedAfter is blocked: the
// client's window is zero, so nothing drains) and reports the bytes sent.
type fillHandler struct{ sent chan int64 }

const fillChunk = 4 << 10

func (h fillHandler) ServeStream(ctx context.Context, st *stages.Stream) {
	st.Req.Discard(io.EOF)
	defer st.Resp.Close(io.EOF)
	if st.Resp.Send(ctx, frames.HeadersFrame(&frames.Head{Status: 200, ContentLength: -1}, false)) != nil {
		h.sent <- -1
		return
	}
	var n int64
	for n < 64<<20 {
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := st.Resp.Send(sctx, frames.CopyData(make([]byte, fillChunk), false))
		cancel()
		if err != nil {
			break
		}
		n += fillChunk
	}
	h.sent <- n
}

func testH2Config(sendBuf int64) *H2Config {
	c := &H2Config{
		MaxConcurrentStreams: 100, MaxHeaderListSize: 64 << 10, MaxFields: 100,
		StreamWindow: 256 << 10, ConnWindow: 1 << 20, MaxContinuation: 32,
		ControlPerSecond: 1000, RapidResetThreshold: 100, LocalErrorResets: 100,
		MaxStreamsPerConn: 1000, GlitchThreshold: 1000,
		HeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, BodyTimeout: time.Minute,
		WriteTimeout: 30 * time.Second, MaxBodyBytes: 1 << 20,
		StreamBytes: bus.DefaultStreamBytes, SendBuf: sendBuf,
	}
	c.NewSender = func(conn net.Conn, bw *h2.BufWriter, w *h2.Writer, onStop func(error)) H2Sender {
		return encode.NewH2Writer(conn, bw, w, encode.H2WriterConfig{
			WriteTimeout: c.WriteTimeout, ConnWindow: c.ConnWindow, OnStop: onStop,
		})
	}
	return c
}

// sendBufFill serves one stream to a client whose stream window is zero
// and returns how many response bytes the gateway held for it.
func sendBufFill(t *testing.T, sendBuf int64) int64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := fillHandler{sent: make(chan int64, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ServeH2(ctx, c, c, false, &stages.ConnInfo{}, testH2Config(sendBuf), h)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true})
	go io.Copy(io.Discard, c) // the head and SETTINGS; no window is ever opened
	var n int64
	select {
	case n = <-h.sent:
	case <-time.After(30 * time.Second):
		t.Fatal("handler never blocked")
	}
	c.Close()
	cancel()
	<-served
	return n
}

func TestH2_MaxSendBufSize_BoundsTheBytesHeldPerStream(t *testing.T) {
	for _, sendBuf := range []int64{32 << 10, 128 << 10} {
		n := sendBufFill(t, sendBuf)
		if n > sendBuf || n <= sendBuf-fillChunk {
			t.Errorf("max_send_buf_size %d: %d bytes held toward a client that reads nothing", sendBuf, n)
		}
	}
}
