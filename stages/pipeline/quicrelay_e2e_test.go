package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/stages/quicrelay"
)

// modeBBackend is a real QUIC server speaking an ALPN no stack knows: each
// bidi stream is answered with name + ":" + its bytes.
type modeBBackend struct {
	addr, cert string
	conns      chan *quic.Conn
}

const modeBALPN = "eg-test/1"

func startModeBBackend(t *testing.T, name string) *modeBBackend {
	t.Helper()
	certPath, keyPath := writeCert(t, t.TempDir(), "backend")
	return startModeBBackendWith(t, name, certPath, keyPath)
}

func startModeBBackendWith(t *testing.T, name, certPath, keyPath string) *modeBBackend {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{modeBALPN}},
		&quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	b := &modeBBackend{addr: ln.Addr().String(), cert: certPath, conns: make(chan *quic.Conn, 16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			select {
			case b.conns <- c:
			default:
			}
			wg.Go(func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					wg.Go(func() {
						in, err := io.ReadAll(s)
						if err != nil {
							return
						}
						s.Write(append([]byte(name+":"), in...))
						s.Close()
					})
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return b
}

// modeBListener is a Mode B quic listener named name: top holds listener
// keys, raw the [listeners.quic.raw_proxy] lines.
func modeBListener(name string, f h3Files, top, raw string) string {
	return "[[listeners]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:0\"\nprotocol = \"quic\"\n" + strings.TrimSpace(top) + "\n" +
		"[listeners.quic]\ncert_path = \"" + f.cert + "\"\nkey_path = \"" + f.key + "\"\nretry_secret_path = \"" + f.secret + "\"\n" +
		"[listeners.quic.raw_proxy]\n" + strings.TrimSpace(raw) + "\n"
}

// modeBAsk opens a connection to the gateway's Mode B listener, sends msg
// on one stream and returns the answer and the connection.
func modeBAsk(t *testing.T, addr net.Addr, gatewayCert, msg string) (string, *quic.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr.String(), &tls.Config{RootCAs: certPool(t, gatewayCert), ServerName: "localhost", NextProtos: []string{modeBALPN}},
		&quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte(msg))
	s.Close()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("answer to %q: %v", msg, err)
	}
	return string(b), c
}

// TestModeB_RustRawProxyBlockRelays: the Rust form (backend_addr, sni,
// backend_ca_path) boots and relays an arbitrary ALPN end to end, counted
// in the relay's series and the listener's connections.
func TestModeB_RustRawProxyBlockRelays(t *testing.T) {
	be := startModeBBackend(t, "b1")
	f := newH3Files(t)
	g := startGateway(t, modeBListener("modeb", f, "", `
backend_addr = "`+be.addr+`"
sni = "localhost"
backend_ca_path = "`+be.cert+`"
`))
	series := `expressgateway_quicrelay_connections_total{listener="modeb",backend="` + be.addr + `"}`
	before := metricValue(series)
	got, _ := modeBAsk(t, g.Addr("modeb"), f.cert, "hello")
	if got != "b1:hello" {
		t.Fatalf("answer %q", got)
	}
	if metricValue(series) != before+1 {
		t.Fatalf("%s not counted", series)
	}
	if metricValue(`expressgateway_quicrelay_bytes_total{listener="modeb",backend="`+be.addr+`",direction="to_backend"}`) < 5 {
		t.Fatal("bytes to the backend not counted")
	}
}

// TestModeB_PoolFailoverAndReload: a named pool whose first backend is
// down serves from the second; a reload that points the pool at a third
// backend moves new connections there.
func TestModeB_PoolFailoverAndReload(t *testing.T) {
	b2, b3 := startModeBBackend(t, "b2"), startModeBBackend(t, "b3")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	f := newH3Files(t)
	cfg := func(backends ...string) string {
		var b strings.Builder
		b.WriteString("[runtime]\nconnect_timeout_ms = 300\n[[pools]]\nname = \"up\"\nbackends = [")
		for _, a := range backends {
			b.WriteString(`{ address = "` + a + `", protocol = "quic", tls_ca_path = "` + b2.cert + `" },`)
		}
		b.WriteString("]\n")
		return b.String() + modeBListener("modeb", f, `pool = "up"`, "")
	}
	// Each backend has its own self-signed certificate: the reload
	// trusts b3's.
	g := startGateway(t, cfg(dead, b2.addr))
	for range 2 { // round robin: one of the two starts on the dead backend
		if got, _ := modeBAsk(t, g.Addr("modeb"), f.cert, "x"); got != "b2:x" {
			t.Fatalf("failover: %q", got)
		}
	}
	next := strings.ReplaceAll(cfg(b3.addr), b2.cert, b3.cert)
	if err := g.Reload(loadConfig(t, next)); err != nil {
		t.Fatal(err)
	}
	if got, _ := modeBAsk(t, g.Addr("modeb"), f.cert, "y"); got != "b3:y" {
		t.Fatalf("after reload: %q", got)
	}
}

// TestModeB_DrainClosesWithShutdownCode: a connection still open when the
// drain's budget runs out is closed on both sides with CodeShutdown.
func TestModeB_DrainClosesWithShutdownCode(t *testing.T) {
	be := startModeBBackend(t, "b1")
	f := newH3Files(t)
	g := startGateway(t, modeBListener("modeb", f, "drain_timeout_ms = 200", `
backend_addr = "`+be.addr+`"
backend_ca_path = "`+be.cert+`"
`))
	_, c := modeBAsk(t, g.Addr("modeb"), f.cert, "z")
	up := <-be.conns
	g.Drain(200 * time.Millisecond)
	for _, conn := range []*quic.Conn{c, up} {
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("connection not closed by the drain")
		}
		var ae *quic.ApplicationError
		if err := context.Cause(conn.Context()); !errors.As(err, &ae) || ae.ErrorCode != quicrelay.CodeShutdown {
			t.Fatalf("closed by %v, want CodeShutdown", err)
		}
	}
}

// TestModeB_MaxRelayStreamsAndALPNKeys: max_relay_streams is the client's
// stream credit (a third concurrent stream waits until one ends), alpn
// refuses a protocol outside it at the handshake, and an IP address as
// sni is verified against the backend certificate's IP addresses.
func TestModeB_MaxRelayStreamsAndALPNKeys(t *testing.T) {
	be := startModeBBackend(t, "b1")
	f := newH3Files(t)
	g := startGateway(t, modeBListener("modeb", f, "", `
backend_addr = "`+be.addr+`"
backend_ca_path = "`+be.cert+`"
sni = "127.0.0.1"
max_relay_streams = 2
`)+modeBListener("narrow", f, "", `
backend_addr = "`+be.addr+`"
backend_ca_path = "`+be.cert+`"
alpn = ["other/1"]
`))
	_, c := modeBAsk(t, g.Addr("modeb"), f.cert, "warm")
	var held []*quic.Stream
	for range 2 {
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("held"))
		held = append(held, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := c.OpenStreamSync(ctx)
	cancel()
	if err == nil {
		t.Fatal("a third stream opened past max_relay_streams = 2")
	}
	held[0].Close()
	held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(held[0]); err != nil || string(b) != "b1:held" {
		t.Fatalf("held stream: %q %v", b, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.OpenStreamSync(ctx); err != nil {
		t.Fatalf("the ended stream's credit never came back: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if nc, err := quic.DialAddr(dctx, g.Addr("narrow").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{modeBALPN}}, nil); err == nil {
		nc.CloseWithError(0, "")
		t.Fatal("alpn = [\"other/1\"] accepted " + modeBALPN)
	}
}

// TestModeB_HTTP3ThroughTheRelay: quic-go's HTTP/3 client and server
// through Mode B (ALPN h3 passed through; the control and QPACK streams
// of both sides are relayed uni streams): a GET and a 1 MiB POST echo
// arrive whole, and the access line names the backend and the bytes.
func TestModeB_HTTP3ThroughTheRelay(t *testing.T) {
	addr, cert := h3Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		io.Copy(w, r.Body)
	}))
	f := newH3Files(t)
	g := startGateway(t, modeBListener("modeb", f, "", `
backend_addr = "`+addr+`"
backend_ca_path = "`+cert+`"
`))
	var logged logBuf
	g.SetAccessLogOutput(&logged)
	c, _ := h3Client(t, f.cert)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	res, err := c.Post(g.h3URL("modeb")+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(got, body) || res.Header.Get("X-Proto") != "HTTP/3.0" {
		t.Fatalf("echo: %d bytes (want %d), proto %q, err %v", len(got), len(body), res.Header.Get("X-Proto"), err)
	}
	c.Transport.(*http3.Transport).Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logged.String(), `"upstream_addr":"`+addr+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access line for the relayed connection: %q", logged.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line := logged.String(); !strings.Contains(line, `"listener":"modeb","protocol":"QUIC","status":200`) {
		t.Fatalf("access line: %s", line)
	}
}

// TestModeB_ReloadAppliesToNewConnections: a reload's backend_addr,
// max_relay_streams and alpn apply to connections made after it, and a
// connection from before keeps its backend.
func TestModeB_ReloadAppliesToNewConnections(t *testing.T) {
	certPath, keyPath := writeCert(t, t.TempDir(), "backend")
	b1, b2 := startModeBBackendWith(t, "b1", certPath, keyPath), startModeBBackendWith(t, "b2", certPath, keyPath)
	f := newH3Files(t)
	cfg := func(be *modeBBackend, extra string) string {
		return modeBListener("modeb", f, "", `backend_addr = "`+be.addr+`"
backend_ca_path = "`+certPath+`"
`+extra)
	}
	g := startGateway(t, cfg(b1, ""))
	got, old := modeBAsk(t, g.Addr("modeb"), f.cert, "a")
	if got != "b1:a" {
		t.Fatalf("boot: %q", got)
	}
	if err := g.Reload(loadConfig(t, cfg(b2, "max_relay_streams = 1"))); err != nil {
		t.Fatal(err)
	}
	got, c := modeBAsk(t, g.Addr("modeb"), f.cert, "c")
	if got != "b2:c" {
		t.Fatalf("after reload: %q", got)
	}
	held, err := c.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	held.Write([]byte("held"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = c.OpenStreamSync(ctx)
	cancel()
	if err == nil {
		t.Fatal("a second stream opened past the reloaded max_relay_streams = 1")
	}
	// The connection from before the reload still reaches b1, under the
	// stream credit it was given.
	for range 2 {
		s, err := old.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("b"))
		s.Close()
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(s); err != nil || string(b) != "b1:b" {
			t.Fatalf("old connection after reload: %q %v", b, err)
		}
	}
	if err := g.Reload(loadConfig(t, cfg(b2, `alpn = ["other/1"]`))); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if nc, err := quic.DialAddr(dctx, g.Addr("modeb").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{modeBALPN}}, nil); err == nil {
		nc.CloseWithError(0, "")
		t.Fatal("the reloaded alpn did not narrow new handshakes")
	}
}

// TestModeB_ReloadSwitchingModeIsARemovePlusAdd: a quic listener that a
// reload turns from HTTP/3 into Mode B is replaced (the old one drains),
// not half-reconfigured; on a fixed address the reload is refused, as for
// any UDP listener re-added where one still drains.
func TestModeB_ReloadSwitchingModeIsARemovePlusAdd(t *testing.T) {
	be := startModeBBackend(t, "b1")
	web := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h3") }))
	f := newH3Files(t)
	h3cfg := quicListener("q", f, "", `[[listeners.backends]]
address = "`+web+`"
protocol = "h1"`)
	g := startGateway(t, h3cfg)
	c, _ := h3Client(t, f.cert)
	res, err := c.Get(g.h3URL("q") + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	modeB := modeBListener("q", f, "", `backend_addr = "`+be.addr+`"
backend_ca_path = "`+be.cert+`"`)
	if err := g.Reload(loadConfig(t, modeB)); err != nil {
		t.Fatal(err)
	}
	if got, _ := modeBAsk(t, g.Addr("q"), f.cert, "m"); got != "b1:m" {
		t.Fatalf("after the switch: %q", got)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	at := func(s string) string { return strings.Replace(s, `address = "127.0.0.1:0"`, `address = "`+addr+`"`, 1) }
	g2 := startGateway(t, strings.Replace(at(h3cfg), `name = "q"`, `name = "fixed"`, 1))
	err = g2.Reload(loadConfig(t, strings.Replace(at(modeB), `name = "q"`, `name = "fixed"`, 1)))
	if err == nil || !strings.Contains(err.Error(), "is held by listener fixed until it drains") {
		t.Fatalf("switch on a fixed address: %v", err)
	}
}

// TestModeB_PerIPCapOfTheQUICListener: Mode B accepts through the same
// QUIC endpoint as HTTP/3: max_connections_per_ip refuses the next
// connection from one IP with CONNECTION_REFUSED.
func TestModeB_PerIPCapOfTheQUICListener(t *testing.T) {
	be := startModeBBackend(t, "b1")
	f := newH3Files(t)
	g := startGateway(t, strings.Replace(modeBListener("modeb", f, "", `backend_addr = "`+be.addr+`"
backend_ca_path = "`+be.cert+`"`), "[listeners.quic.raw_proxy]", "max_connections_per_ip = 1\n[listeners.quic.raw_proxy]", 1))
	if got, _ := modeBAsk(t, g.Addr("modeb"), f.cert, "one"); got != "b1:one" {
		t.Fatalf("first: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, g.Addr("modeb").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{modeBALPN}}, nil)
	if err == nil {
		c.CloseWithError(0, "")
		t.Fatal("a second connection from one IP was admitted")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("second connection: %v, want CONNECTION_REFUSED", err)
	}
}

// TestModeB_ActiveHealthOverHTTP3: a pool of quic backends that speak
// HTTP/3 is checked over HTTP/3 (type http); the one whose check fails is
// marked down and new Mode B connections all go to the healthy one.
func TestModeB_ActiveHealthOverHTTP3(t *testing.T) {
	serve := func(name string, healthy bool) (string, string) {
		return h3Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" && !healthy {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, name)
		}))
	}
	goodAddr, goodCert := serve("good", true)
	badAddr, badCert := serve("bad", false)
	f := newH3Files(t)
	g := startGateway(t, `
[[pools]]
name = "up"
backends = [{ address = "`+goodAddr+`", protocol = "quic", tls_ca_path = "`+goodCert+`" },
            { address = "`+badAddr+`", protocol = "quic", tls_ca_path = "`+badCert+`" }]
[pools.health_check]
type = "http"
path = "/healthz"
interval_ms = 200
timeout_ms = 190
`+modeBListener("modeb", f, `pool = "up"`, ""))
	deadline := time.Now().Add(10 * time.Second)
	down := `expressgateway_backend_up{pool="up",backend="` + badAddr + `"}`
	up := `expressgateway_backend_up{pool="up",backend="` + goodAddr + `"}`
	for metricValue(up) != 1 || metricValue(down) != 0 || !strings.Contains(metricText(), down+" 0") {
		if time.Now().After(deadline) {
			t.Fatalf("health never settled: good %v, bad %v", metricValue(up), metricValue(down))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 4 { // new connections: each is a pick
		c, tr := h3Client(t, f.cert)
		res, err := c.Get(g.h3URL("modeb") + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		tr.Close()
		if string(b) != "good" {
			t.Fatalf("connection %d reached %q (good up %v, bad up %v)", i, b, metricValue(up), metricValue(down))
		}
	}
}

// metricText is the process's series in the exposition format.
func metricText() string {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return b.String()
}

// 0-RTT on a Mode B listener follows the quic listeners' policy: off by
// default (a resumed client's early data is refused and sent again after
// the handshake), and with allow_0rtt accepted, its streams held until
// the handshake confirms the client (the wait policy, the only one a
// relay of opaque streams can keep), so nothing a replay could repeat
// reaches the backend.
func TestModeB_ZeroRTTFollowsTheListenerPolicy(t *testing.T) {
	if raceEnabled {
		t.Skip("quic-go's 0-RTT client is racy under -race") // quic-go issue #4303
	}
	be := startModeBBackend(t, "b0")
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_0rtt=%v", allow), func(t *testing.T) {
			f := newH3Files(t)
			top := ""
			quic0 := ""
			if allow {
				quic0 = "allow_0rtt = true\n"
			}
			g := startGateway(t, strings.Replace(modeBListener("modeb", f, top, `
backend_addr = "`+be.addr+`"
sni = "localhost"
backend_ca_path = "`+be.cert+`"
`), "[listeners.quic.raw_proxy]", quic0+"[listeners.quic.raw_proxy]", 1))
			cache := newTicketCache()
			tc := &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{modeBALPN}, ClientSessionCache: cache}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			first, err := quic.DialAddr(ctx, g.Addr("modeb").String(), tc, nil)
			if err != nil {
				t.Fatal(err)
			}
			cache.wait(t)
			first.CloseWithError(0, "")
			c, err := quic.DialAddrEarly(ctx, g.Addr("modeb").String(), tc, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseWithError(0, "")
			s, err := c.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte("early"))
			s.Close()
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(s)
			if err != nil || string(b) != "b0:early" {
				t.Fatalf("answer %q, %v", b, err)
			}
			if cs := c.ConnectionState(); cs.Used0RTT != allow || !cs.TLS.DidResume {
				t.Fatalf("0-RTT used %v (want %v), resumed %v", cs.Used0RTT, allow, cs.TLS.DidResume)
			}
		})
	}
}
