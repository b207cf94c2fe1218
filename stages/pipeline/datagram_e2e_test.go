package pipeline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/frames/h3"
	"github.com/expressgateway/expressgateway/stages"
)

// datagramEcho is an HTTP/3 backend handler: an extended CONNECT is
// answered 200 and every HTTP Datagram on its stream is sent back; any
// other request reads its body and answers "ok".
func datagramEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			io.Copy(io.Discard, r.Body)
			w.Write([]byte("ok"))
			return
		}
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
	})
}

func withDatagrams(s *http3.Server) { s.EnableDatagrams = true }

// h3DatagramClient dials the quic listener "q" with QUIC datagrams on and
// returns quic-go's HTTP/3 client connection once the gateway's SETTINGS
// are in.
func h3DatagramClient(t *testing.T, ctx context.Context, g *testGateway, f h3Files) (*quic.Conn, *http3.ClientConn) {
	t.Helper()
	qc, err := quic.DialAddr(ctx, g.Addr("q").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	cc := (&http3.Transport{EnableDatagrams: true}).NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		t.Fatal("no SETTINGS from the gateway")
	}
	return qc, cc
}

// openConnect sends an extended CONNECT with :protocol proto and returns
// the request stream and the response.
func openConnect(t *testing.T, ctx context.Context, cc *http3.ClientConn, proto string) (*http3.RequestStream, *http.Response) {
	t.Helper()
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://localhost/udp", nil)
	req.Proto = proto
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	return str, resp
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func dgDelta(c *metrics.Counter) func() uint64 {
	before := c.Get()
	return func() uint64 { return c.Get() - before }
}

// tunnelListener is quicListener with listener-level keys (top) ahead of
// its [listeners.quic] table.
func tunnelListener(f h3Files, top, quicExtra, extra string) string {
	l := quicListener("q", f, quicExtra, extra)
	return strings.Replace(l, "[listeners.quic]\n", strings.TrimSpace(top)+"\n[listeners.quic]\n", 1)
}

const connectUDP = `extended_connect_protocols = ["connect-udp"]`

func datagramGateway(t *testing.T, quicExtra string) (*testGateway, h3Files) {
	addr, cert := h3Backend(t, datagramEcho(), withDatagrams)
	f := newH3Files(t)
	g := startGateway(t, tunnelListener(f, connectUDP, quicExtra, `
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`))
	return g, f
}

// An H3 client's datagrams on an extended CONNECT reach an H3 backend,
// with the backend stream's own Quarter Stream ID, and its echoes come back
// on the client's stream; once the stream is gone, late ones are dropped
// and counted.
func TestDatagram_H3EchoThroughAnH3Backend(t *testing.T) {
	g, f := datagramGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, cc := h3DatagramClient(t, ctx, g, f)
	if s := cc.Settings(); !s.EnableDatagrams || !s.EnableExtendedConnect {
		t.Fatalf("gateway SETTINGS: datagrams %v, extended CONNECT %v", s.EnableDatagrams, s.EnableExtendedConnect)
	}
	toBackend, toClient := dgDelta(stages.DatagramsToBackend), dgDelta(stages.DatagramsToClient)
	str, resp := openConnect(t, ctx, cc, "connect-udp")
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT: status %d", resp.StatusCode)
	}
	const n = 50
	got := 0
	var rtts []time.Duration
	for i := range n {
		start := time.Now()
		msg := fmt.Sprintf("datagram %d", i)
		// Datagrams are unreliable even on loopback: a lost one is sent
		// again, a few times.
		for try := 0; ; try++ {
			if err := str.SendDatagram([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			b, err := str.ReceiveDatagram(rctx)
			rcancel()
			if err == nil {
				if string(b) != msg {
					t.Fatalf("echo %q, want %q", b, msg)
				}
				got++
				rtts = append(rtts, time.Since(start))
				break
			}
			if try == 3 {
				t.Fatalf("datagram %d: no echo: %v", i, err)
			}
		}
	}
	slices.Sort(rtts)
	t.Logf("%d datagram round trips client → gateway → backend and back: median %v, max %v", len(rtts), rtts[len(rtts)/2], rtts[len(rtts)-1])
	if toBackend() < n || toClient() < n {
		t.Fatalf("relayed %d to the backend and %d to the client, want ≥ %d each", toBackend(), toClient(), n)
	}
	// The tunnel's bytes still flow as its stream's DATA.
	str.Write([]byte("stream bytes"))

	unknown := dgDelta(stages.DatagramDropUnknown)
	str.CancelRead(quic.StreamErrorCode(h3.ErrCodeNoError))
	str.CancelWrite(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
	// The gateway ends the stream's exchange; datagrams still bound to it
	// (sent raw: quic-go's stream sends none once cancelled) are dropped
	// as for an unknown stream, and the connection stays up.
	eventually(t, "late datagrams counted as unknown", func() bool {
		qc.SendDatagram(h3.AppendDatagram(nil, uint64(str.StreamID()), []byte("late")))
		return unknown() > 0
	})
	if qc.Context().Err() != nil {
		t.Fatalf("connection closed: %v", context.Cause(qc.Context()))
	}
}

// A flood bigger than the queues is dropped and counted, never blocking
// the connection: a request on it is still answered.
func TestDatagram_FloodIsDroppedAndCounted(t *testing.T) {
	g, f := datagramGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, cc := h3DatagramClient(t, ctx, g, f)
	str, resp := openConnect(t, ctx, cc, "connect-udp")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	full := dgDelta(stages.DatagramDropQueueFull)
	payload := []byte(strings.Repeat("f", 1000))
	sent := 0
	for ; sent < 20000 && full() == 0; sent++ {
		str.SendDatagram(payload)
	}
	eventually(t, "queue_full drops", func() bool { return full() > 0 })
	t.Logf("first queue_full drop after %d datagrams of %d bytes sent back to back", sent, len(payload))
	// The connection is not blocked: an ordinary request goes through.
	rs, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://localhost/x", nil)
	if err := rs.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	r2, err := rs.ReadResponse()
	if err != nil || r2.StatusCode != 200 {
		t.Fatalf("request after the flood: %v %v", r2, err)
	}
}

// With h3_datagrams = false the listener offers neither QUIC datagrams nor
// SETTINGS_H3_DATAGRAM, so a client cannot send any.
func TestDatagram_OffIsNotAdvertised(t *testing.T) {
	g, f := datagramGateway(t, "h3_datagrams = false")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, cc := h3DatagramClient(t, ctx, g, f)
	if cc.Settings().EnableDatagrams {
		t.Fatal("SETTINGS_H3_DATAGRAM advertised with h3_datagrams = false")
	}
	if qc.ConnectionState().SupportsDatagrams.Remote {
		t.Fatal("QUIC datagrams offered with h3_datagrams = false")
	}
	if err := qc.SendDatagram([]byte{0x00, 'x'}); err == nil {
		t.Fatal("the client could send a QUIC datagram")
	}
	// The tunnel itself still opens: only its datagrams are off.
	str, resp := openConnect(t, ctx, cc, "connect-udp")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := str.SendDatagram([]byte("x")); err == nil {
		t.Fatal("quic-go sent an HTTP Datagram the gateway did not offer")
	}
}

// Toward an HTTP/1.1 backend the client's datagrams are dropped and
// counted; the request on their stream is served all the same.
func TestDatagram_H1BackendDropsThemAndServesTheRequest(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	f := newH3Files(t)
	g := startGateway(t, quicListener("q", f, "", "[[listeners.backends]]\naddress = \""+be+"\"\nprotocol = \"h1\""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, cc := h3DatagramClient(t, ctx, g, f)
	if !cc.Settings().EnableDatagrams {
		t.Fatal("no SETTINGS_H3_DATAGRAM by default")
	}
	unsupported := dgDelta(stages.DatagramDropUnsupported)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A method quic-go sends no content-length: 0 for (it does for POST
	// when the header goes alone), so the body streams after the head.
	req, _ := http.NewRequestWithContext(ctx, "REPORT", "https://localhost/echo", nil)
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unsupported_backend drops", func() bool {
		if err := str.SendDatagram([]byte("to nowhere")); err != nil {
			t.Fatal(err)
		}
		return unsupported() >= 3
	})
	str.Write([]byte("body"))
	str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "body" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// A datagram bound to a stream the client could not have opened (past its
// stream limit) closes the connection with H3_ID_ERROR (RFC 9297 §2.1).
func TestDatagram_StreamPastTheLimitIsIDError(t *testing.T) {
	g, f := datagramGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, _ := h3DatagramClient(t, ctx, g, f)
	// Stream 4 * 10000: far past 100 concurrent streams, none opened.
	if err := qc.SendDatagram(h3.AppendDatagram(nil, 4*10000, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-qc.Context().Done():
	case <-ctx.Done():
		t.Fatal("connection not closed")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || ae.ErrorCode != quic.ApplicationErrorCode(h3.ErrCodeIDError) {
		t.Fatalf("closed with %v, want H3_ID_ERROR", err)
	}
}

// A client that sends SETTINGS_H3_DATAGRAM=1 on a connection without QUIC
// datagram support is closed with H3_SETTINGS_ERROR (RFC 9297 §2.1.1).
func TestDatagram_SettingWithoutQUICSupportIsSettingsError(t *testing.T) {
	g, f := datagramGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, g.Addr("q").String(), &tls.Config{RootCAs: certPool(t, f.cert), ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	// quic-go's client sends the setting as told, whatever QUIC offered.
	(&http3.Transport{EnableDatagrams: true}).NewClientConn(qc)
	select {
	case <-qc.Context().Done():
	case <-ctx.Done():
		t.Fatal("connection not closed")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || ae.ErrorCode != quic.ApplicationErrorCode(h3.ErrCodeSettingsError) {
		t.Fatalf("closed with %v, want H3_SETTINGS_ERROR", err)
	}
}

// An HTTP/3 backend that does not take HTTP Datagrams gets none: the
// client's are dropped as for an HTTP/1.1 backend, the tunnel still opens.
func TestDatagram_H3BackendWithoutThemDropsThem(t *testing.T) {
	addr, cert := h3Backend(t, datagramEcho())
	f := newH3Files(t)
	g := startGateway(t, tunnelListener(f, connectUDP, "", `
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, cc := h3DatagramClient(t, ctx, g, f)
	unsupported := dgDelta(stages.DatagramDropUnsupported)
	str, resp := openConnect(t, ctx, cc, "connect-udp")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	eventually(t, "unsupported_backend drops", func() bool {
		str.SendDatagram([]byte("x"))
		return unsupported() >= 3
	})
}

// h3_datagrams and extended_connect_protocols are live: after a reload a
// new connection is offered datagrams and its connect-udp tunnel relays
// them, while the connection from before keeps what it negotiated.
func TestDatagram_ReloadTurnsThemOnForNewConnections(t *testing.T) {
	addr, cert := h3Backend(t, datagramEcho(), withDatagrams)
	f := newH3Files(t)
	mk := func(top, q string) string {
		return tunnelListener(f, top, q, `
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`)
	}
	g := startGateway(t, mk("", "h3_datagrams = false"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, before := h3DatagramClient(t, ctx, g, f)
	if before.Settings().EnableDatagrams {
		t.Fatal("datagrams offered with h3_datagrams = false")
	}
	if str, resp := openConnect(t, ctx, before, "connect-udp"); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("connect-udp before it is configured: %d, want 501", resp.StatusCode)
	} else {
		str.Close()
	}
	reloadTo(t, g, mk(connectUDP, ""))
	_, after := h3DatagramClient(t, ctx, g, f)
	if !after.Settings().EnableDatagrams {
		t.Fatal("no SETTINGS_H3_DATAGRAM on a connection after the reload")
	}
	str, resp := openConnect(t, ctx, after, "connect-udp")
	if resp.StatusCode != 200 {
		t.Fatalf("connect-udp after the reload: %d", resp.StatusCode)
	}
	for try := 0; ; try++ {
		str.SendDatagram([]byte("after reload"))
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		b, err := str.ReceiveDatagram(rctx)
		rcancel()
		if err == nil && string(b) == "after reload" {
			break
		}
		if try == 3 {
			t.Fatalf("no echo after the reload: %q %v", b, err)
		}
	}
}

// A configured protocol's tunnel needs an extended CONNECT at the backend:
// toward an HTTP/1.1 backend it is refused with 501 and nothing is sent.
func TestDatagram_TunnelToAnH1BackendIs501(t *testing.T) {
	reached := make(chan struct{}, 1)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} }))
	f := newH3Files(t)
	g := startGateway(t, tunnelListener(f, connectUDP, "", "[[listeners.backends]]\naddress = \""+be+"\"\nprotocol = \"h1\""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, cc := h3DatagramClient(t, ctx, g, f)
	if _, resp := openConnect(t, ctx, cc, "connect-udp"); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("connect-udp to an H1 backend: %d, want 501", resp.StatusCode)
	}
	select {
	case <-reached:
		t.Fatal("the H1 backend got a request")
	default:
	}
}
