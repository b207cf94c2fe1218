package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
)

// recordingBackend is a raw TCP backend that keeps every byte each
// connection sent and how that connection ended, so that a test can assert
// what reached the backend at the wire level. A request whose head arrives
// is answered once its chunked body ends ("0\r\n\r\n").
type recordingBackend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen []*backendConn
}

type backendConn struct {
	conn net.Conn
	data []byte
	end  error // what ended the read: io.EOF, a reset, ...
}

func startRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &recordingBackend{ln: ln}
	rb.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bc := &backendConn{conn: c}
			rb.mu.Lock()
			rb.seen = append(rb.seen, bc)
			rb.mu.Unlock()
			rb.wg.Go(func() { rb.serve(c, bc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		rb.mu.Lock()
		for _, bc := range rb.seen {
			bc.conn.Close()
		}
		rb.mu.Unlock()
		rb.wg.Wait()
	})
	return rb
}

func (rb *recordingBackend) serve(c net.Conn, bc *backendConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 32<<10)
	answered := 0
	for {
		n, err := c.Read(buf)
		rb.mu.Lock()
		bc.data = append(bc.data, buf[:n]...)
		complete := bytes.Count(bc.data, []byte("\r\n0\r\n\r\n")) - answered
		if err != nil {
			bc.end = err
		}
		rb.mu.Unlock()
		if err != nil {
			return
		}
		for ; complete > 0; complete-- {
			// Keep-alive: the gateway pools the connection, so the next
			// request goes out on it without a dial.
			c.Write([]byte("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
			answered++
		}
	}
}

// received is the number of bytes all connections have received.
func (rb *recordingBackend) received() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	n := 0
	for _, bc := range rb.seen {
		n += len(bc.data)
	}
	return n
}

func (rb *recordingBackend) addr() string { return rb.ln.Addr().String() }

// conns returns a snapshot of what each connection has received so far.
func (rb *recordingBackend) conns() []backendConn {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	out := make([]backendConn, len(rb.seen))
	for i, bc := range rb.seen {
		out[i] = backendConn{data: append([]byte(nil), bc.data...), end: bc.end}
	}
	return out
}

// TestH1_MalformedChunkInOnePieceNeverReachesTheBackend sends a chunked
// request whose first chunk line carries a 16 KiB extension, head and body
// in one write. The body's framing is refused (400) from bytes that had
// already arrived, so the head must never be forwarded: the backend gets
// no byte, on every try (a head forwarded before the body is checked
// would reach it on some of them).
func TestH1_MalformedChunkInOnePieceNeverReachesTheBackend(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	// The counter is process-wide and keyed by address: an earlier test's
	// backend may have had this port, so only the change is this test's.
	base := proxiedTo(rb.addr())
	addr := g.Addr("web").String()
	head := "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	raw := head + "5;ext=" + strings.Repeat("a", 16<<10) + "\r\nhello\r\n0\r\n\r\n"
	// A valid request first: its backend connection is pooled, so a
	// forwarded head would go out at once, with no dial to delay it.
	if status, err := rawStatus(addr, head+"5\r\nhello\r\n0\r\n\r\n"); err != nil || status != http.StatusOK {
		t.Fatalf("valid request: status %d, %v", status, err)
	}
	before := rb.received()
	// A request is counted when its actor finishes, which may be just
	// after the client read the response.
	for deadline := time.Now().Add(5 * time.Second); proxiedTo(rb.addr())-base < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := proxiedTo(rb.addr()) - base; n != 1 {
		t.Fatalf("the valid request counts %d proxied requests, want 1", n)
	}
	for i := range 50 {
		status, err := rawStatus(addr, raw)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if status != http.StatusBadRequest {
			t.Fatalf("try %d: status %d, want 400", i, status)
		}
	}
	// Give a head that might have been forwarded time to land.
	time.Sleep(100 * time.Millisecond)
	if n := rb.received() - before; n > 0 {
		t.Fatalf("the backend received %d bytes of refused requests", n)
	}
	if n := proxiedTo(rb.addr()) - base; n != 1 {
		t.Fatalf("%d refused requests were handed to the backend", n-1)
	}
}

// proxiedTo sums http_requests_total over the series whose backend is
// addr: the requests the proxy took to that backend, whatever reached its
// socket (a reset can destroy bytes the backend had not read yet, so the
// wire alone cannot prove a head was never sent).
func proxiedTo(addr string) uint64 {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	re := regexp.MustCompile(`(?m)^expressgateway_http_requests_total\{[^}]*backend="` + regexp.QuoteMeta(addr) + `"[^}]*\} (\d+)$`)
	var n uint64
	for _, m := range re.FindAllSubmatch(b.Bytes(), -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n
}

// rawStatus writes raw on a new connection in one write and returns the
// status of the response.
func rawStatus(addr, raw string) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestH1_MalformedChunkAfterForwardingResetsTheBackend sends a valid head
// and first chunk, waits until the backend has them (forwarding has
// begun), then a malformed chunk line. The client gets 400 and the
// backend's read ends in an error without the terminating chunk: it never
// sees a complete request.
func TestH1_MalformedChunkAfterForwardingResetsTheBackend(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs := rb.conns()
		if len(cs) == 1 && bytes.Contains(cs[0].data, []byte("hello")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first chunk never reached the backend: %d connections", len(cs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn.Write([]byte("zz\r\nabc\r\n0\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	for {
		cs := rb.conns()
		if cs[0].end != nil {
			c := cs[0]
			if bytes.Contains(c.data, []byte("\r\n0\r\n")) || bytes.Contains(c.data, []byte("abc")) {
				t.Fatalf("the backend received a complete request: %q", c.data)
			}
			if errors.Is(c.end, io.EOF) {
				// A FIN after a partial chunked body is an unexpected EOF
				// to the backend's parser; we send RST so it cannot be
				// mistaken for a clean close.
				t.Fatalf("the backend's connection ended with a clean FIN, want a reset")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend connection was never aborted: %q", cs[0].data)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestH1_StrictTEByDefaultAnswers501ForOtherCodings runs at default
// settings: a transfer coding other than chunked is one we do not
// implement (501, as nginx answers), while the smuggling forms keep their
// 400; none of them reaches the backend.
func TestH1_StrictTEByDefaultAnswers501ForOtherCodings(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	addr := g.Addr("web").String()
	for _, c := range []struct {
		te     string
		status int
	}{
		{"gzip, chunked", http.StatusNotImplemented},
		{"x-custom;a=b, chunked", http.StatusNotImplemented},
		{"gzip", http.StatusBadRequest},                   // chunked not last
		{"chunked, gzip", http.StatusBadRequest},          // chunked not last
		{"gzip, chunked, chunked", http.StatusBadRequest}, // chunked twice
	} {
		raw := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + c.te + "\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		status, err := rawStatus(addr, raw)
		if err != nil || status != c.status {
			t.Errorf("transfer-encoding %q: status %d (%v), want %d", c.te, status, err, c.status)
		}
	}
	if status, err := rawStatus(addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"); err != nil || status != http.StatusOK {
		t.Fatalf("plain chunked: status %d (%v), want 200", status, err)
	}
	cs := rb.conns()
	if len(cs) != 1 || bytes.Count(cs[0].data, []byte("POST ")) != 1 {
		t.Fatalf("the backend saw %d connections, want only the plain chunked request", len(cs))
	}
}

// TestH1_LenientTEForwardsTheCodingsIntact sets strict_te off, the setting
// under test: "gzip, chunked" reaches an HTTP/1.1 backend with both codings
// declared and the body chunked as sent, never as plain chunked (the body
// is gzip-coded), and an HTTP/2 backend, which cannot declare the coding,
// is not sent the request at all (501).
func TestH1_LenientTEForwardsTheCodingsIntact(t *testing.T) {
	rb := startRecordingBackend(t)
	var h2Seen sync.Map
	h2be := h2Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h2Seen.Store(r.URL.Path, true)
	}), "", "")
	g := startGateway(t, "[security]\nstrict_te = false\n"+h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`)+h1Listener("h2", `
[[listeners.backends]]
address = "`+h2be+`"
protocol = "h2"`))
	raw := "POST /coded HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n"
	if status, err := rawStatus(g.Addr("web").String(), raw); err != nil || status != http.StatusOK {
		t.Fatalf("status %d (%v), want 200 from the backend", status, err)
	}
	cs := rb.conns()
	if len(cs) != 1 {
		t.Fatalf("%d backend connections", len(cs))
	}
	if bytes.Count(cs[0].data, []byte("transfer-encoding")) != 1 || !bytes.Contains(cs[0].data, []byte("\r\ntransfer-encoding: gzip, chunked\r\n")) {
		t.Fatalf("the codings were not forwarded intact: %q", cs[0].data)
	}
	if !bytes.HasSuffix(cs[0].data, []byte("\r\n\r\n5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n")) {
		t.Fatalf("the chunked body was not forwarded as sent: %q", cs[0].data)
	}
	if status, err := rawStatus(g.Addr("h2").String(), raw); err != nil || status != http.StatusNotImplemented {
		t.Fatalf("to an HTTP/2 backend: status %d (%v), want 501", status, err)
	}
	if _, ok := h2Seen.Load("/coded"); ok {
		t.Fatal("the HTTP/2 backend got the request without its coding")
	}
}

// TestReload_StrictTEIsLive turns strict_te off by SIGHUP's path: a new
// connection after the reload gets the codings forwarded, not 501.
func TestReload_StrictTEIsLive(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	addr := g.Addr("web").String()
	raw := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
	if status, err := rawStatus(addr, raw); err != nil || status != http.StatusNotImplemented {
		t.Fatalf("before reload: status %d (%v), want 501", status, err)
	}
	next := *g.cfg
	next.Listeners = append([]conf.Listener(nil), g.cfg.Listeners...)
	next.Security.StrictTE = false
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if status, err := rawStatus(addr, raw); err != nil || status != http.StatusOK {
		t.Fatalf("after reload: status %d (%v), want 200 from the backend", status, err)
	}
	if cs := rb.conns(); len(cs) != 1 || !bytes.Contains(cs[0].data, []byte("\r\ntransfer-encoding: gzip, chunked\r\n")) {
		t.Fatalf("the backend did not get the coded request after the reload")
	}
}

// TestH1_BackendTransferCodingIsNeverDropped: a backend answering with
// "gzip, chunked" gets its response refused (502), never relayed as plain
// chunked with the gzip-coded bytes undeclared.
func TestH1_BackendTransferCodingIsNeverDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n"))
			})
		}
	})
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+ln.Addr().String()+`"`))
	status, err := rawStatus(g.Addr("web").String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || status != http.StatusBadGateway {
		t.Fatalf("status %d (%v), want 502", status, err)
	}
}

// TestH1_ChunkLineCutByTheReadIsWaitedForThenTimedOut: a head followed by
// the start of a chunk-size line is held until that line completes; a
// client that never completes it gets 408 at the body timeout (the setting
// under test, shortened), and the backend gets nothing.
func TestH1_ChunkLineCutByTheReadIsWaitedForThenTimedOut(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[listeners.http]
body_timeout_ms = 300
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	base := proxiedTo(rb.addr()) // process-wide counter; see above
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=ab"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	if n := rb.received(); n != 0 {
		t.Fatalf("the backend received %d bytes", n)
	}
	if n := proxiedTo(rb.addr()) - base; n != 0 {
		t.Fatalf("the request was handed to the backend")
	}
}

// TestH1_ChunkLineCompletedLaterIsForwarded: the same cut line, completed
// a moment later, is a valid request and reaches the backend whole.
func TestH1_ChunkLineCompletedLaterIsForwarded(t *testing.T) {
	rb := startRecordingBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+rb.addr()+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=ab"))
	time.Sleep(50 * time.Millisecond)
	conn.Write([]byte("c\r\nhello\r\n0\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if cs := rb.conns(); len(cs) != 1 || !bytes.HasSuffix(cs[0].data, []byte("\r\n\r\n5\r\nhello\r\n0\r\n\r\n")) {
		t.Fatalf("the backend did not get the body whole")
	}
}
