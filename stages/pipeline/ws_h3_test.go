package pipeline

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/frames/ws"
)

// h3Tunnel opens a WebSocket over HTTP/3 (RFC 9220) to path on the quic
// listener "q" with quic-go's HTTP/3 client: an extended CONNECT with
// :protocol websocket on a request stream, which then carries the
// WebSocket bytes.
func h3Tunnel(t *testing.T, ctx context.Context, g *testGateway, f h3Files, path string) (*http3.RequestStream, *http.Response) {
	t.Helper()
	qc, err := quic.DialAddr(ctx, g.Addr("q").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	cc := (&http3.Transport{}).NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		t.Fatal("no SETTINGS from the gateway")
	}
	if !cc.Settings().EnableExtendedConnect {
		t.Fatal("the gateway's SETTINGS lack SETTINGS_ENABLE_CONNECT_PROTOCOL")
	}
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://localhost"+path, nil)
	req.Proto = "websocket"
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	return str, resp
}

// readServerFrame reads one unmasked server message: its opcode and
// payload, fragments joined (a control frame is returned as it comes).
func readServerFrame(br *bufio.Reader) (byte, []byte, error) {
	var msg []byte
	var first byte
	for {
		fin, op, p, err := readOneFrame(br)
		if err != nil {
			return 0, nil, err
		}
		if op >= 0x8 {
			return op, p, nil
		}
		if op != 0 {
			first = op
		}
		msg = append(msg, p...)
		if fin {
			return first, msg, nil
		}
	}
}

func readOneFrame(br *bufio.Reader) (fin bool, op byte, p []byte, err error) {
	op, fin, p, err = ws.ReadFrame(br, nil, 1<<30)
	return fin, op, p, err
}

func TestWS_H3FrontEchoesAndClosesToAnH1Backend(t *testing.T) {
	wb := startWSBackend(t)
	f := newH3Files(t)
	g := startGateway(t, quicListener("q", f, "", "[[listeners.backends]]\naddress = \""+wb.addr+"\"\nprotocol = \"h1\""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	str, resp := h3Tunnel(t, ctx, g, f, "/echo")
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT: status %d, want 200", resp.StatusCode)
	}
	br := bufio.NewReader(str)
	for _, msg := range []string{"hello over HTTP/3", string(make([]byte, 70000))} {
		if _, err := str.Write(clientFrame(0x1, true, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		op, p, err := readServerFrame(br)
		if err != nil || op != 0x1 || string(p) != msg {
			t.Fatalf("echo: op %d, %d bytes, %v", op, len(p), err)
		}
	}
	str.Write(clientFrame(0x8, true, []byte{0x03, 0xe8})) // Close 1000
	select {
	case code := <-wb.closes:
		if code != websocket.StatusNormalClosure {
			t.Fatalf("backend saw close %d, want 1000", code)
		}
	case <-ctx.Done():
		t.Fatal("the backend never saw the client's Close")
	}
	if op, p, err := readServerFrame(br); err != nil || op != 0x8 || len(p) < 2 {
		t.Fatalf("the backend's Close: op %d %v", op, err)
	}
}

func TestWS_H3FrontLimitsCloseWithTheirCodes(t *testing.T) {
	wb := startWSBackend(t)
	f := newH3Files(t)
	g := startGateway(t, quicListener("q", f, "", "[[listeners.backends]]\naddress = \""+wb.addr+"\"\nprotocol = \"h1\"\n[listeners.websocket]\nmax_message_size_bytes = 1000"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint16
	}{
		{"message over max_message_size_bytes", clientFrame(0x2, true, make([]byte, 2000)), ws.CloseMessageTooBig},
		{"unmasked client frame", []byte{0x81, 0x02, 'h', 'i'}, ws.CloseProtocolError},
	} {
		str, resp := h3Tunnel(t, ctx, g, f, "/echo")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.name, resp.StatusCode)
		}
		str.Write(tc.frame)
		br := bufio.NewReader(str)
		op, p, err := readServerFrame(br)
		if err != nil || op != 0x8 || len(p) < 2 || uint16(p[0])<<8|uint16(p[1]) != tc.want {
			t.Errorf("%s: op %d payload %v %v, want Close %d", tc.name, op, p, err, tc.want)
		}
		<-wb.closes
	}
}

func TestWS_H3ExtendedConnectOffIsNotAdvertised(t *testing.T) {
	wb := startWSBackend(t)
	f := newH3Files(t)
	g := startGateway(t, quicListener("q", f, "", "[[listeners.backends]]\naddress = \""+wb.addr+"\"\nprotocol = \"h1\"\n[listeners.websocket]\nh3_extended_connect = false"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, g.Addr("q").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(qc)
	<-cc.ReceivedSettings()
	if cc.Settings().EnableExtendedConnect {
		t.Fatal("SETTINGS_ENABLE_CONNECT_PROTOCOL advertised with h3_extended_connect = false")
	}
	if n := wb.upgrades.Load(); n != 0 {
		t.Fatalf("%d upgrades reached the backend", n)
	}
}
