//lint:file-ignore SA1019 net/http refuses a ":protocol" header before its HTTP/2 client sees it; x/net's deprecated client is the one that sends extended CONNECT

package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames/ws"
)

// h2Tunnel opens a WebSocket over HTTP/2 (RFC 8441) to path on listener
// "web" with x/net/http2's client (h2c, prior knowledge): an extended
// CONNECT with :protocol websocket, whose request body then carries the
// client's WebSocket bytes and whose response body the backend's. The
// client sends it only once the gateway's SETTINGS allowed it.
func h2Tunnel(t *testing.T, ctx context.Context, g *testGateway, path string) (io.WriteCloser, *http.Response) {
	t.Helper()
	return h2ExtendedConnect(t, ctx, g, path, http.Header{":protocol": {"websocket"}, "Sec-WebSocket-Version": {"13"}})
}

// h2ExtendedConnect sends an extended CONNECT (RFC 8441) with the fields
// in h (":protocol" among them) to path on listener "web" over h2c, and
// returns its request body's writer and the response.
func h2ExtendedConnect(t *testing.T, ctx context.Context, g *testGateway, path string, h http.Header) (io.WriteCloser, *http.Response) {
	t.Helper()
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "http://"+g.Addr("web").String()+path, pr)
	req.Header = h
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	return pw, resp
}

// closedWith is the series of tunnels on listener "web" to backend over
// proto that closed with code.
func closedWith(backend, proto string, code int) string {
	return `expressgateway_websocket_tunnels_closed_total{listener="web",backend="` + backend + `",protocol="` + proto + `",code="` + strconv.Itoa(code) + `"}`
}

// waitMetric waits (bounded) for series to reach want: a tunnel is counted
// closed once both of its sides are done.
func waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); metricValue(series) < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := metricValue(series); got != want {
		t.Fatalf("%s = %v, want %v", series, got, want)
	}
}

func TestWS_H2FrontEchoesAndClosesToAnH1Backend(t *testing.T) {
	wb := startWSBackend(t)
	g := wsGateway(t, wb, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opened := metricValue(`expressgateway_websocket_tunnels_opened_total{listener="web",backend="` + wb.addr + `",protocol="HTTP/2"}`)
	closed := metricValue(closedWith(wb.addr, "HTTP/2", 1000))
	in := metricValue(`expressgateway_websocket_bytes_total{listener="web",backend="` + wb.addr + `",protocol="HTTP/2",direction="in"}`)
	w, resp := h2Tunnel(t, ctx, g, "/echo")
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT: status %d, want 200", resp.StatusCode)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != "" {
		t.Fatal("Sec-WebSocket-Accept is HTTP/1.1's: an HTTP/2 client must not get it")
	}
	br := bufio.NewReader(resp.Body)
	for _, msg := range []string{"hello over HTTP/2", strings.Repeat("y", 70000)} {
		if _, err := w.Write(clientFrame(0x1, true, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		op, p, err := readServerFrame(br)
		if err != nil || op != 0x1 || string(p) != msg {
			t.Fatalf("echo: op %d, %d bytes, %v", op, len(p), err)
		}
	}
	// Ping and pong pass through: the backend answers the client's PING.
	w.Write(clientFrame(0x9, true, []byte("are you there")))
	if op, p, err := readServerFrame(br); err != nil || op != 0xA || string(p) != "are you there" {
		t.Fatalf("pong: op %d %q %v", op, p, err)
	}
	if n := metricValue(`expressgateway_websocket_tunnels_opened_total{listener="web",backend="`+wb.addr+`",protocol="HTTP/2"}`) - opened; n != 1 {
		t.Fatalf("tunnels opened over HTTP/2: %v, want 1", n)
	}
	w.Write(clientFrame(0x8, true, []byte{0x03, 0xe8})) // Close 1000
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
	// The backend's Close ends the stream cleanly (END_STREAM).
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("after the Close: %v, want a clean end of stream", err)
	}
	// Counted closed with the client's code, its bytes with it.
	waitMetric(t, closedWith(wb.addr, "HTTP/2", 1000), closed+1)
	sent := len(clientFrame(0x1, true, []byte("hello over HTTP/2"))) + len(clientFrame(0x1, true, make([]byte, 70000))) +
		len(clientFrame(0x9, true, []byte("are you there"))) + len(clientFrame(0x8, true, []byte{0x03, 0xe8}))
	if n := metricValue(`expressgateway_websocket_bytes_total{listener="web",backend="`+wb.addr+`",protocol="HTTP/2",direction="in"}`) - in; n != float64(sent) {
		t.Fatalf("bytes in: %v, want the %d the client sent", n, sent)
	}
}

func TestWS_H2FrontLimitsCloseWithTheirCodes(t *testing.T) {
	wb := startWSBackend(t)
	g := wsGateway(t, wb, "[listeners.websocket]\nmax_message_size_bytes = 1000\nidle_timeout_seconds = 1\nping_rate_limit_per_window = 2\nread_frame_timeout_seconds = 1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[int]float64{1009: 1, 1002: 2, 1001: 1, 1008: 2}
	for code := range want {
		want[code] += metricValue(closedWith(wb.addr, "HTTP/2", code))
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint16
	}{
		{"message over max_message_size_bytes", clientFrame(0x2, true, make([]byte, 2000)), ws.CloseMessageTooBig},
		{"unmasked client frame", []byte{0x81, 0x02, 'h', 'i'}, ws.CloseProtocolError},
		{"control frame over 125 bytes", clientFrame(0x9, true, make([]byte, 126)), ws.CloseProtocolError},
		{"idle past idle_timeout_seconds", nil, ws.CloseGoingAway},
		{"pings over ping_rate_limit_per_window", bytes.Repeat(clientFrame(0x9, true, []byte("p")), 3), ws.ClosePolicyViolation},
		{"a frame not finished within read_frame_timeout_seconds", clientFrame(0x1, true, []byte("cut short"))[:5], ws.ClosePolicyViolation},
	} {
		w, resp := h2Tunnel(t, ctx, g, "/echo")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.name, resp.StatusCode)
		}
		if tc.frame != nil {
			w.Write(tc.frame)
		}
		br := bufio.NewReader(resp.Body)
		op, p, err := readServerFrame(br)
		for err == nil && op == 0xA { // the backend's pongs to the pings it got
			op, p, err = readServerFrame(br)
		}
		if err != nil || op != 0x8 || len(p) < 2 || uint16(p[0])<<8|uint16(p[1]) != tc.want {
			t.Errorf("%s: op %d payload %v %v, want Close %d", tc.name, op, p, err, tc.want)
		}
		select {
		case <-wb.closes:
		case <-ctx.Done():
			t.Fatalf("%s: the backend's side never closed", tc.name)
		}
	}
	// Counted by the gateway's close codes.
	for code, n := range want {
		waitMetric(t, closedWith(wb.addr, "HTTP/2", code), n)
	}
}

// A 64 MiB message from the backend to a slow HTTP/2 client streams under
// the client's flow control and the bus budget, never held whole.
func TestWS_H2LargeMessageStreamsWithinTheBusBudget(t *testing.T) {
	wb := startWSBackend(t)
	g := wsGateway(t, wb, "")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	size := 64 << 20
	_, resp := h2Tunnel(t, ctx, g, "/big?n="+strconv.Itoa(size))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var peak int64
	var hdr [10]byte
	if _, err := io.ReadFull(br, hdr[:10]); err != nil || hdr[1]&0x7f != 127 {
		t.Fatalf("frame header %x %v", hdr, err)
	}
	buf := make([]byte, 64<<10)
	got := 0
	for i := 0; got < size; i++ {
		n, err := br.Read(buf)
		got += n
		if u := globalBudget.Used(); u > peak {
			peak = u
		}
		if i < 40 {
			time.Sleep(2 * time.Millisecond) // slow at first: the links fill up
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if limit := int64(4 * bus.DefaultStreamBytes); peak > limit {
		t.Fatalf("in-flight bus bytes peaked at %d, over %d", peak, limit)
	}
	t.Logf("64 MiB over an HTTP/2 tunnel; bus in-flight peak %d KiB", peak>>10)
}

// rawH2Settings opens an h2c connection to listener "web" and returns the
// gateway's first SETTINGS frame.
func rawH2Settings(t *testing.T, g *testGateway) (*http2.Framer, net.Conn, *http2.SettingsFrame) {
	t.Helper()
	c, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			return fr, c, sf
		}
	}
}

func connectProtocolAdvertised(sf *http2.SettingsFrame) bool {
	v, ok := sf.Value(http2.SettingEnableConnectProtocol)
	return ok && v == 1
}

// h2_extended_connect is live: a reload that turns it off stops the
// setting on new connections, whose :protocol is then malformed (a stream
// error) and reaches no backend.
func TestWS_H2ExtendedConnectIsLiveAndOffRefusesProtocol(t *testing.T) {
	wb := startWSBackend(t)
	g := wsGateway(t, wb, "")
	if _, _, sf := rawH2Settings(t, g); !connectProtocolAdvertised(sf) {
		t.Fatal("SETTINGS_ENABLE_CONNECT_PROTOCOL not advertised by default")
	}
	reloadTo(t, g, h1Listener("web", `
[[listeners.backends]]
address = "`+wb.addr+`"
protocol = "h1"
[listeners.websocket]
h2_extended_connect = false`))
	fr, _, sf := rawH2Settings(t, g)
	if connectProtocolAdvertised(sf) {
		t.Fatal("SETTINGS_ENABLE_CONNECT_PROTOCOL advertised after h2_extended_connect = false")
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, kv := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/echo"}, {"sec-websocket-version", "13"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.StreamID != 1 || rst.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("RST_STREAM %d %v, want stream 1 PROTOCOL_ERROR", rst.StreamID, rst.ErrCode)
			}
			break
		}
		if _, ok := f.(*http2.HeadersFrame); ok {
			t.Fatal("a response to :protocol without the setting")
		}
	}
	if n := wb.upgrades.Load(); n != 0 {
		t.Fatalf("%d upgrades reached the backend", n)
	}
}

// On drain an HTTP/2 tunnel keeps echoing (its connection got a GOAWAY)
// and gets Close 1001 at the drain timeout.
func TestWS_H2DrainClosesTunnelsWith1001AfterTheTimeout(t *testing.T) {
	if raceEnabled {
		t.Skip("the close code races under -race, as over HTTP/1.1")
	}
	wb := startWSBackend(t)
	g := wsGateway(t, wb, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, resp := h2Tunnel(t, ctx, g, "/echo")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	drained := make(chan struct{})
	go func() { g.Drain(2 * time.Second); close(drained) }()
	t.Cleanup(func() { <-drained })
	time.Sleep(100 * time.Millisecond) // the drain has begun
	w.Write(clientFrame(0x1, true, []byte("still open")))
	if op, p, err := readServerFrame(br); err != nil || op != 0x1 || string(p) != "still open" {
		t.Fatalf("echo during the drain: op %d %q %v", op, p, err)
	}
	op, p, err := readServerFrame(br)
	if err != nil || op != 0x8 || len(p) < 2 || uint16(p[0])<<8|uint16(p[1]) != ws.CloseGoingAway {
		t.Fatalf("at the drain timeout: op %d %v %v, want Close 1001", op, p, err)
	}
}

// A backend that drops its connection mid-tunnel: the HTTP/2 and HTTP/3
// client gets the gateway's Close 1011, never a silent end.
func TestWS_MultiplexedFrontsBackendGoneClosesWith1011(t *testing.T) {
	wb := startWSBackend(t)
	f := newH3Files(t)
	up := "[[listeners.backends]]\naddress = \"" + wb.addr + "\"\nprotocol = \"h1\""
	g := startGateway(t, h1Listener("web", up)+quicListener("q", f, "", up))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for proto, open := range map[string]func() (io.Writer, io.Reader){
		"h2": func() (io.Writer, io.Reader) { w, resp := h2Tunnel(t, ctx, g, "/drop"); return w, resp.Body },
		"h3": func() (io.Writer, io.Reader) { str, _ := h3Tunnel(t, ctx, g, f, "/drop"); return str, str },
	} {
		w, r := open()
		w.Write(clientFrame(0x1, true, []byte("one")))
		op, p, err := readServerFrame(bufio.NewReader(r))
		if err != nil || op != 0x8 || len(p) < 2 || uint16(p[0])<<8|uint16(p[1]) != ws.CloseInternalError {
			t.Errorf("%s: after the backend died: op %d %v %v, want Close 1011", proto, op, p, err)
		}
	}
}
