package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames/capsule"
	"github.com/expressgateway/expressgateway/stages"
)

// An HTTP/2 client's DATAGRAM capsules reach an HTTP/3 backend as HTTP/3
// datagrams, and the backend's datagrams come back as DATAGRAM capsules on
// the client's stream.
func TestDatagram_H2CapsulesToAnH3Backend(t *testing.T) {
	addr, cert := h3Backend(t, datagramEcho(), withDatagrams)
	g := startGateway(t, h1Listener("web", connectUDP+`
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	toBackend, toClient := dgDelta(stages.DatagramsToBackend), dgDelta(stages.DatagramsToClient)
	// RFC 9297 §3.2: capsule-protocol: ?1 says the stream is capsules.
	w, resp := h2ExtendedConnect(t, ctx, g, "/udp", http.Header{":protocol": {"connect-udp"}, "Capsule-Protocol": {"?1"}})
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT over HTTP/2: status %d", resp.StatusCode)
	}
	echoes := make(chan string, 64)
	go func() {
		var s capsule.Splitter
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			s.Feed(buf[:n], func([]byte) {}, func(d []byte) { echoes <- string(d) }, func() {})
			if err != nil {
				close(echoes)
				return
			}
		}
	}()
	const n = 20
	for i := range n {
		msg := fmt.Sprintf("capsule %d", i)
		for try := 0; ; try++ {
			if _, err := w.Write(capsule.AppendDatagram(nil, []byte(msg))); err != nil {
				t.Fatal(err)
			}
			var got string
			select {
			case got = <-echoes:
			case <-time.After(time.Second):
			}
			if got == msg {
				break
			}
			if try == 3 {
				t.Fatalf("capsule %d: echo %q", i, got)
			}
		}
	}
	if toBackend() < n || toClient() < n {
		t.Fatalf("relayed %d to the backend, %d to the client; want ≥ %d", toBackend(), toClient(), n)
	}
}

// Over HTTP/2 only the listed protocols are tunnelled: another :protocol
// gets 501, and so does websocket when its own key turns it off, even
// though SETTINGS_ENABLE_CONNECT_PROTOCOL is on for the listed ones.
func TestDatagram_H2UnlistedProtocolIs501(t *testing.T) {
	reached := make(chan struct{}, 4)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} }))
	g := startGateway(t, h1Listener("web", connectUDP+`
[listeners.websocket]
h2_extended_connect = false
[[listeners.backends]]
address = "`+be+`"`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, proto := range []string{"connect-ip", "websocket"} {
		_, resp := h2ExtendedConnect(t, ctx, g, "/x", http.Header{":protocol": {proto}, "Sec-WebSocket-Version": {"13"}})
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf(":protocol %s: status %d, want 501", proto, resp.StatusCode)
		}
	}
	select {
	case <-reached:
		t.Fatal("the backend got a request")
	default:
	}
}
