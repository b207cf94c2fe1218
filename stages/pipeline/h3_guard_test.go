package pipeline

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
	fquic "github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// rawH3 is a hand-driven HTTP/3 client: real QUIC from quic-go, frames
// from our codec, so tests can send what well-behaved clients never do.
type rawH3 struct {
	t    *testing.T
	conn *quic.Conn
	enc  *h3.Encoder
}

func rawTLS(t *testing.T, certPath string) *tls.Config {
	return &tls.Config{RootCAs: certPool(t, certPath), ServerName: "localhost", NextProtos: []string{"h3"}}
}

func dialRawH3(t *testing.T, addr string, tc *tls.Config) *rawH3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	r := &rawH3{t: t, conn: conn, enc: h3.NewEncoder()}
	r.openControl()
	return r
}

func (r *rawH3) openControl() {
	ctrl, err := r.conn.OpenUniStream()
	if err != nil {
		r.t.Fatal(err)
	}
	var s h3.SettingsFrame
	ctrl.Write(s.Append(fquic.AppendVarint(nil, uint64(h3.StreamTypeControl))))
}

func getHead(path string) *frames.Head {
	return &frames.Head{Method: "GET", Scheme: "https", Authority: "localhost", Path: path, ContentLength: -1}
}

// send opens a request stream and writes a HEADERS frame with section.
func (r *rawH3) send(section []byte, fin bool) *quic.Stream {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := r.conn.OpenStreamSync(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	str.Write(h3.AppendHeadersFrame(nil, section))
	if fin {
		str.Close()
	}
	return str
}

// readStatus reads a response's HEADERS frame and returns its status.
func readStatus(t *testing.T, str *quic.Stream) (int, error) {
	t.Helper()
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(str)
	for {
		var hb [16]byte
		n := 0
		for {
			b, err := br.ReadByte()
			if err != nil {
				return 0, err
			}
			hb[n] = b
			n++
			if fh, _, err := h3.ParseFrameHeader(hb[:n]); err == nil {
				p := make([]byte, fh.Length)
				if _, err := io.ReadFull(br, p); err != nil {
					return 0, err
				}
				if fh.Type != h3.FrameTypeHeaders {
					break
				}
				h, err := h3.DecodeResponse(p, nil)
				if err != nil {
					return 0, err
				}
				if h.Status >= 200 {
					return h.Status, nil
				}
				break
			}
		}
	}
}

// closeCode waits for the connection to be closed by the gateway and
// returns its HTTP/3 error code.
func closeCode(t *testing.T, conn *quic.Conn) h3.ErrCode {
	t.Helper()
	select {
	case <-conn.Context().Done():
	case <-time.After(20 * time.Second):
		t.Fatal("connection not closed")
	}
	var ae *quic.ApplicationError
	if !errors.As(context.Cause(conn.Context()), &ae) || !ae.Remote {
		t.Fatalf("closed by %v, want a remote application error", context.Cause(conn.Context()))
	}
	return h3.ErrCode(ae.ErrorCode)
}

func startH3Gateway(t *testing.T, quicExtra, extra string) (*testGateway, h3Files) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		io.WriteString(w, "ok "+r.Header.Get("Early-Data"))
	}))
	f := newH3Files(t)
	g := startGateway(t, quicListener("h3", f, quicExtra, extra+`
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	return g, f
}

func TestH3_QPACKBombGets431AndDynamicReferenceClosesTheConnection(t *testing.T) {
	g, f := startH3Gateway(t, "", "[listeners.http]\nmax_header_fields = 10000")
	r := dialRawH3(t, g.Addr("h3").String(), rawTLS(t, f.cert))
	before := guard.H3FieldSectionCap.Get()
	// 1,200 one-byte static references to "accept-encoding: gzip, deflate,
	// br" (64 units each): 1.2 KB on the wire, 77 KB decoded.
	sec := r.enc.AppendRequest(nil, getHead("/"))
	for range 1200 {
		sec = append(sec, 0xc0|31)
	}
	if st, err := readStatus(t, r.send(sec, true)); err != nil || st != 431 {
		t.Fatalf("QPACK bomb: status %d, err %v; want 431", st, err)
	}
	if guard.H3FieldSectionCap.Get() != before+1 {
		t.Fatal("h3_field_section_too_large not counted")
	}
	// The connection lives on: a good request still works.
	if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, getHead("/")), true)); err != nil || st != 200 {
		t.Fatalf("after the bomb: %d %v", st, err)
	}
	// A HEADERS frame whose wire size alone is over the cap is not read.
	big := r.enc.AppendRequest(nil, &frames.Head{Method: "GET", Scheme: "https", Authority: "localhost", Path: "/", ContentLength: -1,
		Fields: frames.Fields{{Name: "x-big", Value: strings.Repeat("a", 70<<10)}}})
	if st, err := readStatus(t, r.send(big, true)); err != nil || st != 431 {
		t.Fatalf("oversize HEADERS: %d %v", st, err)
	}
	// A reference into the dynamic table we never allowed: RFC 9204
	// §2.2.3, a connection error QPACK_DECOMPRESSION_FAILED.
	r.send([]byte{0x02, 0x00, 0x80}, true)
	if code := closeCode(t, r.conn); code != h3.ErrCodeQPACKDecompressionFailed {
		t.Fatalf("closed with %s, want QPACK_DECOMPRESSION_FAILED", code)
	}
}

func TestH3_MalformedRequestsGetMessageErrors(t *testing.T) {
	g, f := startH3Gateway(t, "", "")
	r := dialRawH3(t, g.Addr("h3").String(), rawTLS(t, f.cert))
	for name, fields := range map[string][]string{
		"uppercase":  {":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/", "X-Up", "1"},
		"no path":    {":method", "GET", ":scheme", "https", ":authority", "a"},
		"connection": {":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/", "connection", "close"},
	} {
		fs := frames.Fields{}
		for i := 0; i < len(fields); i += 2 {
			fs = append(fs, frames.Field{Name: fields[i], Value: fields[i+1]})
		}
		sec := appendRawFields(fs)
		if st, err := readStatus(t, r.send(sec, true)); err != nil || st != 400 {
			t.Fatalf("%s: %d %v; want 400", name, st, err)
		}
	}
	// A plain CONNECT (a forward proxy) is refused: 405.
	if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, &frames.Head{Method: "CONNECT", Authority: "db:5432", ContentLength: -1}), true)); err != nil || st != 405 {
		t.Fatalf("CONNECT: %d %v", st, err)
	}
	// DATA before HEADERS: H3_FRAME_UNEXPECTED on the connection.
	str, _ := r.conn.OpenStreamSync(context.Background())
	str.Write(append(h3.AppendDataHeader(nil, 2), "hi"...))
	if code := closeCode(t, r.conn); code != h3.ErrCodeFrameUnexpected {
		t.Fatalf("closed with %s, want H3_FRAME_UNEXPECTED", code)
	}
}

// appendRawFields encodes fields verbatim as QPACK literals (RFC 9204
// §4.5.6), pseudo-headers included, so a test can send what the typed
// encoders refuse to produce.
func appendRawFields(fs frames.Fields) []byte {
	sec := []byte{0, 0} // Required Insert Count 0, Base 0
	for _, f := range fs {
		sec = fquicPrefixInt(sec, 0x20, 3, len(f.Name))
		sec = append(sec, f.Name...)
		sec = fquicPrefixInt(sec, 0x00, 7, len(f.Value))
		sec = append(sec, f.Value...)
	}
	return sec
}

// fquicPrefixInt appends an RFC 7541 §5.1 prefixed integer with the
// pattern bits in the first byte.
func fquicPrefixInt(dst []byte, pattern byte, n uint, v int) []byte {
	max := 1<<n - 1
	if v < max {
		return append(dst, pattern|byte(v))
	}
	dst = append(dst, pattern|byte(max))
	v -= max
	for v >= 128 {
		dst = append(dst, byte(v%128)|0x80)
		v /= 128
	}
	return append(dst, byte(v))
}

func TestH3_LifetimeCapSendsGoAwayAndRejectsLaterStreams(t *testing.T) {
	f := newH3Files(t)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	g2 := startGateway(t, "[runtime]\nmax_requests_per_h3_connection = 3\n"+quicListener("capped", f, "", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	r := dialRawH3(t, g2.Addr("capped").String(), rawTLS(t, f.cert))
	ctrl, err := r.conn.AcceptUniStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, getHead("/")), true)); err != nil || st != 200 {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	// The server's control stream: type, SETTINGS, then GOAWAY(12): the
	// streams 0, 4 and 8 were processed, nothing from 12 on will be.
	br := bufio.NewReader(ctrl)
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if typ, _ := br.ReadByte(); typ != 0 {
		t.Fatalf("control stream type %d", typ)
	}
	var goaway uint64 = 1<<62 - 1
	for goaway == 1<<62-1 {
		var hb []byte
		var fh h3.FrameHeader
		for {
			b, err := br.ReadByte()
			if err != nil {
				t.Fatalf("control stream: %v", err)
			}
			hb = append(hb, b)
			if fh, _, err = h3.ParseFrameHeader(hb); err == nil {
				break
			}
		}
		p := make([]byte, fh.Length)
		io.ReadFull(br, p)
		if fh.Type == h3.FrameTypeGoAway {
			ga, err := h3.ParseGoAway(p)
			if err != nil {
				t.Fatal(err)
			}
			goaway = ga.ID
		}
	}
	if goaway != 12 {
		t.Fatalf("GOAWAY %d, want 12", goaway)
	}
	// A client that ignores it gets H3_REQUEST_REJECTED.
	str := r.send(r.enc.AppendRequest(nil, getHead("/")), true)
	_, err = readStatus(t, str)
	var se *quic.StreamError
	if !errors.As(err, &se) || h3.ErrCode(se.ErrorCode) != h3.ErrCodeRequestRejected {
		t.Fatalf("stream past GOAWAY: %v, want H3_REQUEST_REJECTED", err)
	}
	// quic-go's client moves to a new connection by itself.
	c, _ := h3Client(t, f.cert)
	for i := range 7 {
		resp, err := c.Get(g2.h3URL("capped") + "/")
		if err != nil {
			t.Fatalf("request %d across GOAWAYs: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestH3_ConcurrentStreamCapIsTheQUICStreamLimit(t *testing.T) {
	g, f := startH3Gateway(t, "", "[listeners.h2_security]\nmax_concurrent_streams = 5")
	r := dialRawH3(t, g.Addr("h3").String(), rawTLS(t, f.cert))
	// Wait for the server's transport parameters (handshake done).
	<-r.conn.HandshakeComplete()
	var strs []*quic.Stream
	for i := range 5 {
		s, err := r.conn.OpenStream()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		strs = append(strs, s)
	}
	if _, err := r.conn.OpenStream(); !errors.As(err, new(*quic.StreamLimitReachedError)) {
		t.Fatalf("6th stream: %v, want the stream limit", err)
	}
	for _, s := range strs {
		s.CancelWrite(0x10c)
	}
}

func TestH3_ResetFloodClosesTheConnection(t *testing.T) {
	g, f := startH3Gateway(t, "", "[listeners.h2_security]\nrapid_reset_threshold = 10")
	r := dialRawH3(t, g.Addr("h3").String(), rawTLS(t, f.cert))
	before := guard.H3ResetFlood.Get()
	for i := 0; i < 40 && r.conn.Context().Err() == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		str, err := r.conn.OpenStreamSync(ctx)
		cancel()
		if err != nil {
			break
		}
		str.Write(h3.AppendHeadersFrame(nil, r.enc.AppendRequest(nil, getHead("/slow"))))
		str.CancelWrite(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
		str.CancelRead(quic.StreamErrorCode(h3.ErrCodeRequestCanceled))
	}
	if code := closeCode(t, r.conn); code != h3.ErrCodeExcessiveLoad {
		t.Fatalf("closed with %s, want H3_EXCESSIVE_LOAD", code)
	}
	if guard.H3ResetFlood.Get() <= before {
		t.Fatal("h3_reset_flood not counted")
	}
}

func TestQUIC_PerIPConnectionCapRefusesTheNextConnection(t *testing.T) {
	g, f := startH3Gateway(t, "max_connections_per_ip = 2", "")
	tc := rawTLS(t, f.cert)
	dialRawH3(t, g.Addr("h3").String(), tc)
	dialRawH3(t, g.Addr("h3").String(), tc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, g.Addr("h3").String(), tc, &quic.Config{})
	if err == nil {
		c.CloseWithError(0, "")
		t.Fatal("third connection from one IP was admitted")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("third connection: %v, want CONNECTION_REFUSED", err)
	}
}
