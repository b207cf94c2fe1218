package pipeline

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/stages/guard"
)

// h2Peer is a raw HTTP/2 client: it writes frames as an attacker would and
// asserts what the gateway answers on the wire.
type h2Peer struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
	// dec decodes every response head read, keeping HPACK in step.
	dec  *hpack.Decoder
	head []hpack.HeaderField
}

func dialH2(t *testing.T, addr string, settings ...http2.Setting) *h2Peer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &h2Peer{t: t, conn: c, fr: http2.NewFramer(c, c)}
	p.enc = hpack.NewEncoder(&p.buf)
	p.dec = hpack.NewDecoder(4096, nil)
	c.Write([]byte(http2.ClientPreface))
	p.fr.WriteSettings(settings...)
	return p
}

// block encodes a GET for path plus extra fields.
func (p *h2Peer) block(path string, extra ...string) []byte {
	p.buf.Reset()
	p.enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	p.enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
	p.enc.WriteField(hpack.HeaderField{Name: ":authority", Value: "x"})
	p.enc.WriteField(hpack.HeaderField{Name: ":path", Value: path})
	for i := 0; i+1 < len(extra); i += 2 {
		p.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return append([]byte(nil), p.buf.Bytes()...)
}

func (p *h2Peer) get(id uint32, path string, extra ...string) {
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(path, extra...), EndStream: true, EndHeaders: true})
}

// next reads frames until want says stop (true) or the connection ends.
func (p *h2Peer) next(want func(http2.Frame) bool) http2.Frame {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.t.Fatalf("connection ended before the expected frame: %v", err)
		}
		if h, ok := f.(*http2.HeadersFrame); ok {
			p.head, err = p.dec.DecodeFull(h.HeaderBlockFragment())
			if err != nil {
				p.t.Fatalf("response head: %v", err)
			}
		}
		if want(f) {
			return f
		}
	}
}

func (p *h2Peer) wantGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	p.t.Helper()
	f := p.next(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if f.ErrCode != code {
		p.t.Fatalf("GOAWAY %v (%q), want %v", f.ErrCode, f.DebugData(), code)
	}
	return f
}

func (p *h2Peer) wantRST(id uint32, code http2.ErrCode) {
	p.t.Helper()
	f := p.next(func(f http2.Frame) bool {
		r, ok := f.(*http2.RSTStreamFrame)
		return ok && r.StreamID == id
	}).(*http2.RSTStreamFrame)
	if f.ErrCode != code {
		p.t.Fatalf("RST_STREAM %d: %v, want %v", id, f.ErrCode, code)
	}
}

// wantStatus reads the response head of stream id.
func (p *h2Peer) wantStatus(id uint32, status string) {
	p.t.Helper()
	p.next(func(f http2.Frame) bool {
		h, ok := f.(*http2.HeadersFrame)
		return ok && h.StreamID == id
	})
	if len(p.head) == 0 || p.head[0].Value != status {
		p.t.Fatalf("stream %d head %v, want :status %s", id, p.head, status)
	}
}

// guardGateway starts an h1 (h2c) listener with h2_security overrides in
// front of a backend that holds /slow requests for a while.
func guardGateway(t *testing.T, security string) string {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 1<<20))
			return
		}
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, h1Listener("web", "[listeners.h2_security]\n"+security+`
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	return g.Addr("web").String()
}

// counterDelta returns a function reporting how much the guard counter
// grew since the call.
func counterDelta(token string) func() uint64 {
	c := guard.Counter(token)
	before := c.Get()
	return func() uint64 { return c.Get() - before }
}

func TestH2_Rejects_RapidReset(t *testing.T) {
	addr := guardGateway(t, "rapid_reset_threshold = 20")
	d := counterDelta("h2_rapid_reset")
	p := dialH2(t, addr)
	for i := range 100 {
		id := uint32(2*i + 1)
		p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("/slow"), EndStream: true, EndHeaders: true})
		p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if d() == 0 {
		t.Fatal("security_h2_rapid_reset_total did not move")
	}
}

func TestH2_Rejects_ContinuationFlood(t *testing.T) {
	addr := guardGateway(t, "max_continuation_frames = 8")
	d := counterDelta("h2_continuation_flood")
	p := dialH2(t, addr)
	blk := p.block("/")
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:1], EndStream: true})
	for range 1000 {
		if err := p.fr.WriteContinuation(1, false, nil); err != nil {
			break
		}
	}
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if d() == 0 {
		t.Fatal("security_h2_continuation_flood_total did not move")
	}
}

func TestH2_Rejects_HPACKBombWith431(t *testing.T) {
	addr := guardGateway(t, "max_header_list_size = 16384")
	d := counterDelta("h2_hpack_bomb")
	p := dialH2(t, addr)
	// One 3000-byte value enters the dynamic table; then each 1-byte index
	// repeats it: a ~100-byte block that decodes past 16 KiB.
	p.buf.Reset()
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "x"}, {Name: ":path", Value: "/"}, {Name: "x-bomb", Value: strings.Repeat("b", 3000)}} {
		p.enc.WriteField(f)
	}
	blk := append([]byte(nil), p.buf.Bytes()...)
	for range 100 {
		blk = append(blk, 0x80|62) // indexed field: the newest dynamic entry
	}
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true})
	p.wantStatus(1, "431")
	if d() == 0 {
		t.Fatal("security_h2_hpack_bomb_total did not move")
	}
}

func TestH2_Rejects_ControlFrameFloods(t *testing.T) {
	for _, tc := range []struct {
		token string
		send  func(p *h2Peer, i int)
	}{
		{"h2_ping_flood", func(p *h2Peer, i int) { p.fr.WritePing(false, [8]byte{byte(i)}) }},
		{"h2_settings_flood", func(p *h2Peer, i int) { p.fr.WriteSettings() }},
		{"h2_window_update_flood", func(p *h2Peer, i int) { p.fr.WriteWindowUpdate(0, 1) }},
		{"h2_priority_flood", func(p *h2Peer, i int) {
			p.fr.WritePriority(uint32(2*i+1), http2.PriorityParam{StreamDep: 0, Weight: 1})
		}},
		{"h2_empty_data_flood", func(p *h2Peer, i int) {
			if i == 0 {
				p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block("/slow"), EndHeaders: true})
			}
			p.fr.WriteData(1, false, nil)
		}},
	} {
		t.Run(tc.token, func(t *testing.T) {
			addr := guardGateway(t, "control_frames_per_second = 50\nglitch_threshold = 100000")
			d := counterDelta(tc.token)
			p := dialH2(t, addr)
			for i := range 500 {
				tc.send(p, i)
			}
			p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
			if d() == 0 {
				t.Fatalf("security_%s_total did not move", tc.token)
			}
		})
	}
}

func TestH2_Refuses_StreamsOverMaxConcurrent(t *testing.T) {
	addr := guardGateway(t, "max_concurrent_streams = 2")
	d := counterDelta("h2_stream_refused")
	p := dialH2(t, addr)
	p.get(1, "/slow")
	p.get(3, "/slow")
	p.get(5, "/slow")
	p.wantRST(5, http2.ErrCodeRefusedStream)
	if d() == 0 {
		t.Fatal("security_h2_stream_refused_total did not move")
	}
}

func TestH2_LifetimeStreamCap_GracefulGoAway(t *testing.T) {
	addr := guardGateway(t, "max_streams_per_connection = 3")
	d := counterDelta("h2_stream_lifetime_cap")
	p := dialH2(t, addr)
	for i := range 3 {
		p.get(uint32(2*i+1), "/")
	}
	f := p.wantGoAway(http2.ErrCodeNo)
	if f.LastStreamID != 5 {
		t.Fatalf("GOAWAY last stream %d, want 5", f.LastStreamID)
	}
	p.wantStatus(5, "200")
	if d() == 0 {
		t.Fatal("security_h2_stream_lifetime_cap_total did not move")
	}
}

func TestH2_ZeroWindowStall_ResetsThenCloses(t *testing.T) {
	addr := guardGateway(t, "zero_window_timeout_ms = 300")
	d := counterDelta("h2_zero_window_stall")
	p := dialH2(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	p.get(1, "/big")
	p.wantRST(1, http2.ErrCodeFlowControl)
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if d() == 0 {
		t.Fatal("security_h2_zero_window_stall_total did not move")
	}
}

func TestH2_GlitchScore_GoAwayThenClose(t *testing.T) {
	addr := guardGateway(t, "glitch_threshold = 40")
	warn, closed := counterDelta("h2_glitch_goaway"), counterDelta("h2_glitch_close")
	p := dialH2(t, addr)
	// Each malformed request (an uppercase field name) is a stream error
	// worth 10: the third crosses 75%, the fourth 100%. A slow stream
	// keeps the connection open after the graceful GOAWAY.
	p.get(1, "/slow")
	for i := range 4 {
		p.get(uint32(2*i+3), "/", "X-Upper", "1")
	}
	p.wantGoAway(http2.ErrCodeNo)
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if warn() == 0 || closed() == 0 {
		t.Fatal("glitch counters did not move")
	}
}

func TestH2_MalformedRequestsNeverReachTheBackend(t *testing.T) {
	addr := guardGateway(t, "")
	p := dialH2(t, addr)
	bad := [][]string{
		{"Upper", "1"},
		{"connection", "close"},
		{"transfer-encoding", "chunked"},
		{"te", "gzip"},
		{"x-a", "a\r\nb"},
		{"x-nul", "a\x00b"},
	}
	for i, f := range bad {
		p.get(uint32(2*i+1), "/", f...)
		p.wantRST(uint32(2*i+1), http2.ErrCodeProtocol)
	}
	// :authority and host that disagree: 400.
	id := uint32(2*len(bad) + 1)
	p.get(id, "/", "host", "other")
	p.wantStatus(id, "400")
}

// post opens stream id with a POST head announcing length body bytes.
func (p *h2Peer) post(id uint32, path string, length int) {
	p.buf.Reset()
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "x"}, {Name: ":path", Value: path}, {Name: "content-length", Value: strconv.Itoa(length)}} {
		p.enc.WriteField(f)
	}
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: append([]byte(nil), p.buf.Bytes()...), EndHeaders: true})
}

// slowBodyGateway starts an h2c listener whose backend reports on done
// whether it read a request body to its clean end.
func slowBodyGateway(t *testing.T, global, listener string) (string, chan bool) {
	done := make(chan bool, 1)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		done <- err == nil
	}))
	g := startGateway(t, global+h1Listener("web", listener+`
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	return g.Addr("web").String(), done
}

func wantAbortedBody(t *testing.T, done chan bool) {
	t.Helper()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("the backend saw a cut request body as complete")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never saw the request body end")
	}
}

func TestH2_SlowPost_TrickleBelowTheMinimumRateIsReset(t *testing.T) {
	addr, done := slowBodyGateway(t, `
[runtime.watchdog]
body_progress_min_bps = 1000
sweep_interval_ms = 100
`, "")
	d := counterDelta("slow_body_reaped")
	p := dialH2(t, addr)
	p.post(1, "/", 100000)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms: 10 B/s against a 1000 B/s floor
		for range 100 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if p.fr.WriteData(1, false, []byte("x")) != nil {
				return
			}
		}
	}()
	p.wantRST(1, http2.ErrCodeCancel)
	wantAbortedBody(t, done)
	if d() == 0 {
		t.Fatal("security_slow_body_reaped_total did not move")
	}
}

func TestH2_SlowPost_StalledBodyIsResetAtTheBodyTimeout(t *testing.T) {
	addr, done := slowBodyGateway(t, "", "[listeners.http]\nbody_timeout_ms = 300\n")
	p := dialH2(t, addr)
	p.post(1, "/", 1000)
	p.fr.WriteData(1, false, make([]byte, 100))
	p.wantRST(1, http2.ErrCodeCancel)
	wantAbortedBody(t, done)
}

// wantTwoStepGoAway reads the first GOAWAY of a graceful shutdown
// (2^31-1, NO_ERROR) and the PING after it, then opens stream between
// (it must still be served), answers the PING and reads the final GOAWAY,
// whose last stream id must be between.
func (p *h2Peer) wantTwoStepGoAway(between uint32) {
	p.t.Helper()
	first := p.wantGoAway(http2.ErrCodeNo)
	if first.LastStreamID != 1<<31-1 {
		p.t.Fatalf("first GOAWAY names stream %d, want 2^31-1", first.LastStreamID)
	}
	ping := p.next(func(f http2.Frame) bool {
		pf, ok := f.(*http2.PingFrame)
		return ok && !pf.IsAck()
	}).(*http2.PingFrame)
	p.get(between, "/")
	p.fr.WritePing(true, ping.Data)
	// The final GOAWAY and the response of between come in either order.
	var final *http2.GoAwayFrame
	status := ""
	p.next(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			final = f
		case *http2.HeadersFrame:
			if f.StreamID == between {
				status = p.head[0].Value
			}
		}
		return final != nil && status != ""
	})
	if final.ErrCode != http2.ErrCodeNo || final.LastStreamID != between {
		p.t.Fatalf("final GOAWAY %v naming stream %d, want NO_ERROR naming %d", final.ErrCode, final.LastStreamID, between)
	}
	if status != "200" {
		p.t.Fatalf("stream %d opened between the GOAWAYs: status %s, want 200", between, status)
	}
}

func TestH2_GlitchScore_GracefulGoAwayInTwoSteps(t *testing.T) {
	addr := guardGateway(t, "glitch_threshold = 40")
	p := dialH2(t, addr)
	p.get(1, "/slow")
	for i := range 3 { // 30 of 40: past 75%
		p.get(uint32(2*i+3), "/", "X-Upper", "1")
	}
	p.wantTwoStepGoAway(9)
	// A stream above the final GOAWAY's last id is refused; the one below
	// it still completes.
	p.get(11, "/")
	refused, done := false, false
	p.next(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			refused = refused || f.StreamID == 11 && f.ErrCode == http2.ErrCodeRefusedStream
		case *http2.HeadersFrame:
			done = done || f.StreamID == 1 && p.head[0].Value == "200"
		}
		return refused && done
	})
}

func TestH2_Drain_GracefulGoAwayInTwoSteps(t *testing.T) {
	release := make(chan struct{})
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release // held until both GOAWAY frames are out
		}
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	p := dialH2(t, g.Addr("web").String())
	p.get(1, "/slow")
	p.wantServerSettings()
	drained := make(chan struct{})
	go func() { g.Drain(10 * time.Second); close(drained) }()
	p.wantTwoStepGoAway(3)
	close(release)
	p.wantStatus(1, "200")
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not finish once the streams were done")
	}
}

// wantServerSettings reads up to the server's SETTINGS: the connection is
// accepted and served before the test acts on it.
func (p *h2Peer) wantServerSettings() {
	p.t.Helper()
	p.next(func(f http2.Frame) bool { _, ok := f.(*http2.SettingsFrame); return ok })
}
