package upstream

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages"
)

// echoDatagrams answers an extended CONNECT 200 and sends back every HTTP
// Datagram of its stream.
func echoDatagrams(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	str, err := w.(http3.HTTPStreamer).HTTPStream()
	if err != nil {
		return
	}
	for {
		b, err := str.ReceiveDatagram(r.Context())
		if err != nil {
			return
		}
		str.SendDatagram(b)
	}
}

func connectHead(proto string) *frames.Head {
	h := getHead("/udp")
	h.Method, h.Protocol, h.ContentLength = "CONNECT", proto, -1
	return h
}

// A round trip under WithDatagrams binds the stream's datagrams to the
// backend's request stream when the server's SETTINGS take them, and
// leaves them unbound when they do not.
func TestH3_DatagramsBindToTheBackendStream(t *testing.T) {
	for _, on := range []bool{true, false} {
		var opts []func(*http3.Server)
		if on {
			opts = append(opts, func(s *http3.Server) { s.EnableDatagrams = true })
		}
		b := h3Peer(t, http.HandlerFunc(echoDatagrams), opts...)
		tr := testH3(t)
		echoed := make(chan string, 8)
		d := stages.NewDatagrams(func(f frames.Frame) bool {
			echoed <- string(f.Data)
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		body := bus.NewLink(0, nil)
		resp, err := tr.RoundTrip(WithDatagrams(ctx, d), b, connectHead("connect-udp"), body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Head.Status != 200 || d.Bound() != on {
			t.Fatalf("datagrams %v: status %d, bound %v", on, resp.Head.Status, d.Bound())
		}
		if on {
			got := ""
			for try := 0; got == "" && try < 5; try++ {
				d.ToBackend(frames.Frame{Kind: frames.KindDatagram, Data: []byte("ping")})
				select {
				case got = <-echoed:
				case <-time.After(time.Second):
				}
			}
			if got != "ping" {
				t.Fatalf("echo %q", got)
			}
		}
		resp.Close(true)
		body.Close(io.EOF)
		cancel()
	}
}
