package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames/ws"
)

// wsHop is a WebSocket server reached over HTTP/2 or HTTP/3: a second
// gateway whose h1 listener (h2c with prior knowledge, RFC 8441
// advertised) or quic listener (RFC 9220 advertised) fronts the WebSocket
// server wb. A gateway with it as an "h2" or "h3" backend opens its
// tunnels to it as extended CONNECT streams. It returns the backends
// section that points there.
func wsHop(t *testing.T, wb *wsBackend, proto, extra string) string {
	t.Helper()
	up := "[[listeners.backends]]\naddress = \"" + wb.addr + "\"\nprotocol = \"h1\"\n" + extra
	var addr, tlsKeys string
	switch proto {
	case "h2":
		addr = startGateway(t, h1Listener("web", up)).Addr("web").String()
	case "h3":
		f := newH3Files(t)
		// The hop sees the front's client's authority (127.0.0.1:port)
		// under the SNI the front verifies it by (localhost): it must not
		// take that for domain fronting.
		addr = startGateway(t, quicListener("q", f, "", up+"\n[listeners.http]\nallow_domain_fronting = true")).Addr("q").String()
		tlsKeys = "\ntls_ca_path = \"" + f.cert + "\"\ntls_verify_hostname = \"localhost\""
	}
	return "[[listeners.backends]]\naddress = \"" + addr + "\"\nprotocol = \"" + proto + "\"" + tlsKeys
}

// echoOver sends text and a 70,000-byte binary message over a tunnel's
// raw streams and wants each echoed, then a Close 1000 answered.
func echoOver(t *testing.T, w io.Writer, r io.Reader, wb *wsBackend) {
	t.Helper()
	br := bufio.NewReader(r)
	for _, m := range []struct {
		op  byte
		msg string
	}{{0x1, "hello"}, {0x2, strings.Repeat("z", 70000)}} {
		if _, err := w.Write(clientFrame(m.op, true, []byte(m.msg))); err != nil {
			t.Fatal(err)
		}
		op, p, err := readServerFrame(br)
		if err != nil || op != m.op || string(p) != m.msg {
			t.Fatalf("echo: op %d, %d bytes, %v", op, len(p), err)
		}
	}
	w.Write(clientFrame(0x8, true, []byte{0x03, 0xe8}))
	select {
	case code := <-wb.closes:
		if code != websocket.StatusNormalClosure {
			t.Fatalf("backend saw close %d, want 1000", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never saw the client's Close")
	}
	if op, _, err := readServerFrame(br); err != nil || op != 0x8 {
		t.Fatalf("the backend's Close: op %d %v", op, err)
	}
}

// Every front reaches a WebSocket server behind an HTTP/2 and an HTTP/3
// backend hop: an HTTP/1.1 client's Upgrade, an HTTP/2 client's and an
// HTTP/3 client's extended CONNECT all become one extended CONNECT to the
// backend, whose 200 comes back as each client's own "tunnel open" (a 101
// with the accept computed from the client's key, or a 200). With the
// HTTP/1.1 backends of ws_e2e_test.go, ws_h2_test.go and ws_h3_test.go,
// that is every cell of the 3 × 3 matrix.
func TestWS_EveryFrontToH2AndH3Backends(t *testing.T) {
	for _, proto := range []string{"h2", "h3"} {
		t.Run(proto, func(t *testing.T) { everyFrontTo(t, proto) })
	}
}

func everyFrontTo(t *testing.T, proto string) {
	wb := startWSBackend(t)
	backends := wsHop(t, wb, proto, "")
	f := newH3Files(t)
	g := startGateway(t, h1Listener("web", backends)+quicListener("q", f, "", backends))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The hop's own series: tunnels it took over HTTP/2 or HTTP/3.
	hopSeries := map[string]string{
		"h2": `expressgateway_websocket_tunnels_opened_total{listener="web",backend="` + wb.addr + `",protocol="HTTP/2"}`,
		"h3": `expressgateway_websocket_tunnels_opened_total{listener="q",backend="` + wb.addr + `",protocol="HTTP/3"}`,
	}[proto]
	before := metricValue(hopSeries)

	t.Run("h1", func(t *testing.T) {
		c := dialWS(t, ctx, wsURL(g, "/echo"), &websocket.DialOptions{Subprotocols: []string{"chat"}})
		c.SetReadLimit(2 << 20)
		if c.Subprotocol() != "chat" {
			t.Fatalf("subprotocol %q, want the backend's chat", c.Subprotocol())
		}
		for _, msg := range []string{"hello over an H2 hop", strings.Repeat("q", 1<<20)} {
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
		if code := <-wb.closes; code != websocket.StatusNormalClosure {
			t.Fatalf("backend saw close %d", code)
		}
	})
	t.Run("h2", func(t *testing.T) {
		w, resp := h2Tunnel(t, ctx, g, "/echo")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		echoOver(t, w, resp.Body, wb)
	})
	t.Run("h3", func(t *testing.T) {
		str, resp := h3Tunnel(t, ctx, g, f, "/echo")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		echoOver(t, str, str, wb)
	})
	t.Run("refusal", func(t *testing.T) {
		// The backend's non-2xx answer is an ordinary response.
		_, resp, err := websocket.Dial(ctx, wsURL(g, "/deny"), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial /deny: %v, response %v; want the backend's 403", err, resp)
		}
	})
	t.Run("limits", func(t *testing.T) {
		// The front's inspector still guards a tunnel to an H2 backend.
		w, resp := h2Tunnel(t, ctx, g, "/echo")
		w.Write([]byte{0x81, 0x02, 'h', 'i'}) // unmasked
		op, p, err := readServerFrame(bufio.NewReader(resp.Body))
		if err != nil || op != 0x8 || len(p) < 2 || uint16(p[0])<<8|uint16(p[1]) != ws.CloseProtocolError {
			t.Fatalf("unmasked frame: op %d %v %v, want Close 1002", op, p, err)
		}
		<-wb.closes
	})
	if n := metricValue(hopSeries) - before; n != 4 {
		t.Fatalf("the hop took %v tunnels over %s, want the 4 opened", n, proto)
	}
}

// A backend that never announced SETTINGS_ENABLE_CONNECT_PROTOCOL is not
// sent an extended CONNECT it would refuse: the client gets 502.
func TestWS_BackendWithoutExtendedConnectIs502(t *testing.T) {
	for proto, off := range map[string]string{"h2": "h2_extended_connect = false", "h3": "h3_extended_connect = false"} {
		t.Run(proto, func(t *testing.T) {
			wb := startWSBackend(t)
			g := startGateway(t, h1Listener("web", wsHop(t, wb, proto, "[listeners.websocket]\n"+off)))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, wsURL(g, "/echo"), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("dial: %v, response %v; want 502", err, resp)
			}
			if n := wb.upgrades.Load(); n != 0 {
				t.Fatalf("%d upgrades reached the WebSocket server", n)
			}
		})
	}
}

// Every cell of the 3 × 3 matrix — an HTTP/1.1, HTTP/2 or HTTP/3 client
// to an HTTP/1.1 backend, an HTTP/2 hop or an HTTP/3 hop — carries the
// same tunnel behaviour: text and binary echo, ping/pong, the backend's
// own Close code, a backend killed mid-tunnel (1011) and the message-size
// limit (1009), on raw frames so every cell is driven alike.
func TestWS_EveryCellOfTheMatrix(t *testing.T) {
	wb := startWSBackend(t)
	backs := map[string]string{
		"h1": "[[listeners.backends]]\naddress = \"" + wb.addr + "\"\nprotocol = \"h1\"",
		"h2": wsHop(t, wb, "h2", ""),
		"h3": wsHop(t, wb, "h3", ""),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limit := "\n[listeners.websocket]\nmax_message_size_bytes = 100000"
	for _, back := range []string{"h1", "h2", "h3"} {
		f := newH3Files(t)
		g := startGateway(t, h1Listener("web", backs[back]+limit)+quicListener("q", f, "", backs[back]+limit))
		open := map[string]func(path string) (io.Writer, *bufio.Reader){
			"h1": func(path string) (io.Writer, *bufio.Reader) { c, br := rawWS(t, g, path); return c, br },
			"h2": func(path string) (io.Writer, *bufio.Reader) {
				w, resp := h2Tunnel(t, ctx, g, path)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return w, bufio.NewReader(resp.Body)
			},
			"h3": func(path string) (io.Writer, *bufio.Reader) {
				str, resp := h3Tunnel(t, ctx, g, f, path)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return str, bufio.NewReader(str)
			},
		}
		for _, front := range []string{"h1", "h2", "h3"} {
			t.Run(front+"→"+back, func(t *testing.T) {
				closeCode := func(br *bufio.Reader) uint16 {
					t.Helper()
					for {
						op, p, err := readServerFrame(br)
						if err != nil {
							t.Fatalf("no Close: %v", err)
						}
						if op == 0x8 {
							if len(p) < 2 {
								return ws.CloseNoStatus
							}
							return uint16(p[0])<<8 | uint16(p[1])
						}
					}
				}
				w, br := open[front]("/echo")
				for _, m := range []struct {
					op  byte
					msg string
				}{{0x1, "hello"}, {0x2, strings.Repeat("b", 70000)}, {0x9, "ping?"}} {
					w.Write(clientFrame(m.op, true, []byte(m.msg)))
					want := m.op
					if m.op == 0x9 {
						want = 0xA
					}
					if op, p, err := readServerFrame(br); err != nil || op != want || string(p) != m.msg {
						t.Fatalf("op %d: got op %d, %d bytes, %v", m.op, op, len(p), err)
					}
				}
				w.Write(clientFrame(0x2, true, make([]byte, 200000)))
				if c := closeCode(br); c != ws.CloseMessageTooBig {
					t.Fatalf("a message over the limit: Close %d, want 1009", c)
				}
				backendClosed(t, wb)

				w, br = open[front]("/echo?close=1")
				w.Write(clientFrame(0x1, true, []byte("close, please")))
				if c := closeCode(br); c != 4000 {
					t.Fatalf("the backend's Close: %d, want 4000", c)
				}
				w.Write(clientFrame(0x8, true, []byte{0x0f, 0xa0})) // the client's answering Close
				backendClosed(t, wb)

				w, br = open[front]("/drop")
				w.Write(clientFrame(0x1, true, []byte("one")))
				if c := closeCode(br); c != ws.CloseInternalError {
					t.Fatalf("a backend killed mid-tunnel: Close %d, want 1011", c)
				}
			})
		}
	}
}

// backendClosed waits (bounded) for the WebSocket server's side of a
// tunnel to end.
func backendClosed(t *testing.T, wb *wsBackend) {
	t.Helper()
	select {
	case <-wb.closes:
	case <-time.After(10 * time.Second):
		t.Fatal("the WebSocket server's side never ended")
	}
}

// In every cell of the matrix a 64 MiB message goes up to the echo
// backend and comes back, to a client that reads slowly at first: both
// directions stream under flow control and the bus budget, never held
// whole by the gateway (the echo backend holds it; the hop gateways of the
// H2 and H3 cells count in the same process's budget). The client message
// limit is raised to 64 MiB, the one setting the test needs.
func TestWS_64MiBBothWaysInEveryCell(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB per cell")
	}
	wb := startWSBackend(t)
	limit := "\n[listeners.websocket]\nmax_message_size_bytes = 67108864"
	backs := map[string]string{
		"h1": "[[listeners.backends]]\naddress = \"" + wb.addr + "\"\nprotocol = \"h1\"",
		"h2": wsHop(t, wb, "h2", limit),
		"h3": wsHop(t, wb, "h3", limit),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const size = 64 << 20
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	frame := clientFrame(0x2, true, msg)
	for _, back := range []string{"h1", "h2", "h3"} {
		f := newH3Files(t)
		g := startGateway(t, h1Listener("web", backs[back]+limit)+quicListener("q", f, "", backs[back]+limit))
		for _, front := range []string{"h1", "h2", "h3"} {
			t.Run(front+"→"+back, func(t *testing.T) {
				var w io.Writer
				var br *bufio.Reader
				switch front {
				case "h1":
					w, br = rawWS(t, g, "/echo")
				case "h2":
					tw, resp := h2Tunnel(t, ctx, g, "/echo")
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
					w, br = tw, bufio.NewReaderSize(resp.Body, 64<<10)
				case "h3":
					str, resp := h3Tunnel(t, ctx, g, f, "/echo")
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
					w, br = str, bufio.NewReaderSize(str, 64<<10)
				}
				var peak atomic.Int64
				stop := make(chan struct{})
				var sample sync.WaitGroup
				sample.Go(func() {
					for {
						if u := globalBudget.Used(); u > peak.Load() {
							peak.Store(u)
						}
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
					}
				})
				wrote := make(chan error, 1)
				go func() { _, err := w.Write(frame); wrote <- err }()
				time.Sleep(200 * time.Millisecond) // a slow reader at first: the links fill up
				op, p, err := readServerFrame(br)
				close(stop)
				sample.Wait()
				if err := <-wrote; err != nil {
					t.Fatalf("writing the message: %v", err)
				}
				if err != nil || op != 0x2 || len(p) != size || !bytes.Equal(p, msg) {
					t.Fatalf("echo: op %d, %d bytes, %v", op, len(p), err)
				}
				// Two directions, on one gateway or two (the hop).
				gateways := int64(1)
				if back != "h1" {
					gateways = 2
				}
				if limit := gateways * 4 * bus.DefaultStreamBytes; peak.Load() > limit {
					t.Fatalf("in-flight bus bytes peaked at %d, over %d", peak.Load(), limit)
				}
				t.Logf("64 MiB up and back; bus in-flight peak %d KiB", peak.Load()>>10)
			})
		}
	}
}
