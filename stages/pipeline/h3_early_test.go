package pipeline

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
	fquic "github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// holdRelay is a UDP relay between one client and the gateway. While
// holding, it keeps back every client datagram that carries a Handshake or
// 1-RTT packet: the client's Finished cannot reach the gateway, so the
// handshake cannot complete there, exactly as for a replayed 0-RTT flight.
// Initial and 0-RTT packets pass, so the early request does.
type holdRelay struct {
	t      *testing.T
	ln     *net.UDPConn
	up     *net.UDPConn
	client atomic.Pointer[net.UDPAddr]

	mu      sync.Mutex
	hold    bool
	holdAll bool // keep back everything: the client falls silent
	held    [][]byte
	wg      sync.WaitGroup
}

func newHoldRelay(t *testing.T, target string) *holdRelay {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := net.ResolveUDPAddr("udp", target)
	up, err := net.DialUDP("udp", nil, ta)
	if err != nil {
		t.Fatal(err)
	}
	r := &holdRelay{t: t, ln: ln, up: up}
	r.wg.Go(r.fromClient)
	r.wg.Go(r.fromServer)
	t.Cleanup(func() {
		ln.Close()
		up.Close()
		r.wg.Wait()
	})
	return r
}

func (r *holdRelay) addr() string { return r.ln.LocalAddr().String() }

// holdable reports whether a datagram carries a Handshake or short-header
// packet, walking coalesced packets with our QUIC header parser.
func holdable(b []byte) bool {
	for len(b) > 0 {
		h, n, err := fquic.ParseHeader(b, 0)
		if err != nil {
			return false
		}
		switch h.Type {
		case fquic.TypeHandshake, fquic.TypeShort:
			return true
		case fquic.TypeInitial, fquic.Type0RTT:
			b = b[n+int(h.Length):]
		default:
			return false
		}
	}
	return false
}

func (r *holdRelay) fromClient() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.client.Store(from)
		b := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		if r.holdAll || (r.hold && holdable(b)) {
			r.held = append(r.held, b)
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		r.up.Write(b)
	}
}

func (r *holdRelay) fromServer() {
	buf := make([]byte, 65536)
	for {
		n, err := r.up.Read(buf)
		if err != nil {
			return
		}
		if c := r.client.Load(); c != nil {
			r.ln.WriteToUDP(buf[:n], c)
		}
	}
}

// silence keeps back every further client datagram, as when a replayed
// first flight is all the gateway ever gets.
func (r *holdRelay) silence() {
	r.mu.Lock()
	r.holdAll = true
	r.mu.Unlock()
}

func (r *holdRelay) setHold(on bool) {
	r.mu.Lock()
	r.hold = on
	held := r.held
	r.held = nil
	r.mu.Unlock()
	if !on {
		for _, b := range held {
			r.up.Write(b)
		}
	}
}

// earlyBackend records what reaches it.
type earlyBackend struct {
	mu     sync.Mutex
	seen   []string // "METHOD early-data"
	signal chan string
}

func startEarlyGateway(t *testing.T, policy string) (*testGateway, h3Files, *earlyBackend) {
	eb := &earlyBackend{signal: make(chan string, 16)}
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s := r.Method + " " + r.Header.Get("Early-Data")
		eb.mu.Lock()
		eb.seen = append(eb.seen, s)
		eb.mu.Unlock()
		eb.signal <- s
		io.WriteString(w, "ok")
	}))
	f := newH3Files(t)
	g := startGateway(t, "[runtime]\nhandshake_timeout_ms = 1000\n"+quicListener("h3", f, `
allow_0rtt = true
early_data_policy = "`+policy+`"
retry_above_new_conns_per_sec = 100000`, `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	return g, f, eb
}

func (eb *earlyBackend) count(method string) int {
	eb.mu.Lock()
	defer eb.mu.Unlock()
	n := 0
	for _, s := range eb.seen {
		if strings.HasPrefix(s, method+" ") {
			n++
		}
	}
	return n
}

func waitSignal(t *testing.T, eb *earlyBackend, what string) string {
	t.Helper()
	select {
	case s := <-eb.signal:
		return s
	case <-time.After(15 * time.Second):
		t.Fatalf("backend never saw %s", what)
	}
	return ""
}

// resumeTLS returns a client TLS config whose session cache holds a ticket
// from a first, complete connection through addr.
func resumeTLS(t *testing.T, addr string, f h3Files, eb *earlyBackend) *tls.Config {
	tc := rawTLS(t, f.cert)
	cache := newTicketCache()
	tc.ClientSessionCache = cache
	r := dialRawH3(t, addr, tc)
	if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, getHead("/warm")), true)); err != nil || st != 200 {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	waitSignal(t, eb, "the warm-up GET")
	cache.wait(t)
	r.conn.CloseWithError(0, "")
	return tc
}

// ticketCache is a session cache that reports when a ticket arrives: the
// server sends it after the handshake, so closing the warm-up connection
// too early (a loaded machine) would leave nothing to resume with 0-RTT.
type ticketCache struct {
	tls.ClientSessionCache
	got chan struct{}
}

func newTicketCache() *ticketCache {
	return &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{}, 1)}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.got <- struct{}{}:
		default:
		}
	}
}

func (c *ticketCache) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no session ticket arrived: 0-RTT cannot be tested")
	}
}

// dialEarly opens a 0-RTT connection and sends one request in early data.
func dialEarly(t *testing.T, addr string, tc *tls.Config, head *frames.Head, body string) (*quic.Conn, *quic.Stream) {
	t.Helper()
	if raceEnabled {
		// quic-go's client races on the peer's transport parameters when
		// it opens streams in 0-RTT (quic-go issue #4303, open): the race
		// detector fails the test on the client's side. The plain suite
		// runs it.
		t.Skip("quic-go's 0-RTT client is racy under -race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddrEarly(ctx, addr, tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	r := &rawH3{t: t, conn: conn, enc: h3.NewEncoder()}
	r.openControl()
	str, err := conn.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	b := h3.AppendHeadersFrame(nil, r.enc.AppendRequest(nil, head))
	if body != "" {
		b = append(h3.AppendDataHeader(b, len(body)), body...)
	}
	str.Write(b)
	str.Close()
	return conn, str
}

func postHead(n int) *frames.Head {
	return &frames.Head{Method: "POST", Scheme: "https", Authority: "localhost", Path: "/buy", ContentLength: int64(n)}
}

func TestH3_0RTT_SafeRequestForwardedWithEarlyDataHeader(t *testing.T) {
	if raceEnabled {
		// The server keeps 0-RTT packets that beat their Initial for a
		// short while only (quic-go: 100 ms); under the race detector on a
		// loaded machine they can expire, the client's retransmission goes
		// out as 1-RTT, which this test holds back, and nothing arrives
		// early. The plain suite runs it.
		t.Skip("0-RTT timing does not hold under -race")
	}
	g, f, eb := startEarlyGateway(t, "reject")
	relay := newHoldRelay(t, g.Addr("h3").String())
	cache := newTicketCache()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(t, f.cert), ClientSessionCache: cache}}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get("https://" + relay.addr() + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitSignal(t, eb, "the warm-up GET")
	cache.wait(t)
	tr.CloseIdleConnections()

	before := guard.H3EarlyForwarded.Get()
	relay.setHold(true)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http3.MethodGet0RTT, "https://"+relay.addr()+"/early", nil)
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	got := waitSignal(t, eb, "the 0-RTT GET (was it sent in early data?)")
	relay.setHold(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got != "GET 1" {
		t.Fatalf("backend saw %q, want a GET with Early-Data: 1", got)
	}
	if guard.H3EarlyForwarded.Get() != before+1 {
		t.Fatal("h3_early_data_forwarded not counted")
	}
}

func TestH3_0RTT_UnsafeRequestGets425UnderReject(t *testing.T) {
	g, f, eb := startEarlyGateway(t, "reject")
	relay := newHoldRelay(t, g.Addr("h3").String())
	var conn *quic.Conn
	for try := 1; ; try++ {
		tc := resumeTLS(t, relay.addr(), f, eb)
		rejected := guard.H3EarlyRejected.Get()
		relay.setHold(true)
		c, str := dialEarly(t, relay.addr(), tc, postHead(4), "ping")
		st, err := readStatus(t, str)
		relay.setHold(false)
		if err != nil && guard.H3EarlyRejected.Get() == rejected && try < 3 {
			// The server keeps 0-RTT packets that beat their Initial for
			// 100 ms only; on a loaded machine they can expire, and the
			// client's retransmission goes out as 1-RTT, which the relay
			// holds: the gateway never saw an early request. Try again.
			t.Logf("try %d: the early request never reached the gateway (%v)", try, err)
			c.CloseWithError(0, "")
			continue
		}
		if err != nil || st != 425 {
			t.Fatalf("early POST: %d %v, want 425", st, err)
		}
		conn = c
		break
	}
	select {
	case <-conn.HandshakeComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("handshake never completed")
	}
	if !conn.ConnectionState().Used0RTT {
		t.Fatal("the client did not use 0-RTT")
	}
	if n := eb.count("POST"); n != 0 {
		t.Fatalf("an early POST reached the backend %d times", n)
	}
}

func TestH3_0RTT_UnsafeRequestHeldUntilHandshakeUnderWait(t *testing.T) {
	g, f, eb := startEarlyGateway(t, "wait")
	relay := newHoldRelay(t, g.Addr("h3").String())
	tc := resumeTLS(t, relay.addr(), f, eb)

	// A handshake that completes: the POST is held, then forwarded
	// without Early-Data (it is no longer replayable).
	held := guard.H3EarlyHeld.Get()
	relay.setHold(true)
	conn1, str := dialEarly(t, relay.addr(), tc, postHead(4), "ping")
	deadline := time.Now().Add(10 * time.Second)
	for guard.H3EarlyHeld.Get() == held && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if guard.H3EarlyHeld.Get() == held {
		t.Fatal("the early POST was not held")
	}
	if n := eb.count("POST"); n != 0 {
		t.Fatal("a held POST reached the backend before the handshake completed")
	}
	relay.setHold(false)
	if got := waitSignal(t, eb, "the held POST"); got != "POST " {
		t.Fatalf("backend saw %q, want a POST without Early-Data", got)
	}
	if st, err := readStatus(t, str); err != nil || st != 200 {
		t.Fatalf("held POST: %d %v", st, err)
	}
	conn1.CloseWithError(0, "")
	for g.listeners[0].conns.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}

	// A handshake that never completes (a replayed flight): the POST is
	// held until the connection dies, and never reaches the backend.
	held = guard.H3EarlyHeld.Get()
	relay.setHold(true)
	dialEarly(t, relay.addr(), tc, postHead(4), "ping")
	deadline = time.Now().Add(10 * time.Second)
	for guard.H3EarlyHeld.Get() == held && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if guard.H3EarlyHeld.Get() == held {
		t.Fatal("the second early POST was not held")
	}
	relay.silence()
	deadline = time.Now().Add(20 * time.Second)
	for g.listeners[0].conns.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := g.listeners[0].conns.Load(); n > 0 {
		t.Fatalf("%d connections still open: the never-completing handshake was not reaped", n)
	}
	if n := eb.count("POST"); n != 1 {
		t.Fatalf("backend saw %d POSTs, want only the one whose handshake completed", n)
	}
}

func TestQUIC_RetryTokensSurviveARestartWithTheSameSecret(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	f := newH3Files(t)
	conf := quicListener("h3", f, "", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`)
	tokens := quic.NewLRUTokenStore(4, 4)
	dial := func(addr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, rawTLS(t, f.cert), &quic.Config{TokenStore: tokens})
		if err != nil {
			t.Fatal(err)
		}
		r := &rawH3{t: t, conn: conn, enc: h3.NewEncoder()}
		r.openControl()
		if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, getHead("/")), true)); err != nil || st != 200 {
			t.Fatalf("%d %v", st, err)
		}
		conn.CloseWithError(0, "")
	}
	// First contact: no token, so a stateless Retry (always on by default).
	g1 := startGateway(t, conf)
	retries := guard.QUICRetry.Get()
	dial(g1.Addr("h3").String())
	// (A retransmitted Initial may draw a second Retry.)
	if guard.QUICRetry.Get() == retries {
		t.Fatal("first connection: no Retry")
	}
	g1.Drain(time.Second)
	// A restarted gateway with the same secret accepts the NEW_TOKEN token
	// the first one issued: no Retry.
	g2 := startGateway(t, conf)
	retries = guard.QUICRetry.Get()
	dial(g2.Addr("h3").String())
	if guard.QUICRetry.Get() != retries {
		t.Fatal("a token from before the restart was refused")
	}
	// A gateway with another secret cannot read it: Retry again.
	other := newH3Files(t)
	os.WriteFile(other.secret, []byte("another secret, another key...."), 0o600)
	f2 := f
	f2.secret = other.secret
	g3 := startGateway(t, quicListener("h3", f2, "", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	retries = guard.QUICRetry.Get()
	dial(g3.Addr("h3").String())
	if guard.QUICRetry.Get() == retries {
		t.Fatal("a token under another secret was accepted")
	}
}

// Instances sharing retry_secret_path (as they must for each other's
// Retry tokens) derive the same session-ticket keys: a ticket one issued
// resumes on the other, with a 0-RTT request accepted there; an instance
// with another secret does a full handshake.
func TestQUIC_InstancesSharingTheRetrySecretResumeAndAccept0RTT(t *testing.T) {
	eb := &earlyBackend{signal: make(chan string, 16)}
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eb.signal <- r.Method + " " + r.Header.Get("Early-Data")
		io.WriteString(w, "ok")
	}))
	f := newH3Files(t)
	mk := func(f h3Files) string {
		return quicListener("h3", f, "allow_0rtt = true\nretry_above_new_conns_per_sec = 100000", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`)
	}
	a, b := startGateway(t, mk(f)), startGateway(t, mk(f))
	f2 := f
	f2.secret = filepath.Join(t.TempDir(), "other.secret")
	c := startGateway(t, mk(f2))

	tc := resumeTLS(t, a.Addr("h3").String(), f, eb)
	conn, str := dialEarly(t, b.Addr("h3").String(), tc, getHead("/early"), "")
	if st, err := readStatus(t, str); err != nil || st != 200 {
		t.Fatalf("0-RTT GET on the other instance: %d %v", st, err)
	}
	cs := conn.ConnectionState()
	if !cs.TLS.DidResume || !cs.Used0RTT {
		t.Fatalf("on the instance sharing the secret: resumed %v, 0-RTT %v; want both", cs.TLS.DidResume, cs.Used0RTT)
	}
	if got := waitSignal(t, eb, "the 0-RTT GET"); got != "GET 1" {
		t.Fatalf("backend saw %q, want a GET sent in early data", got)
	}
	r := dialRawH3(t, c.Addr("h3").String(), tc)
	if st, err := readStatus(t, r.send(r.enc.AppendRequest(nil, getHead("/full")), true)); err != nil || st != 200 {
		t.Fatalf("GET on the instance with another secret: %d %v", st, err)
	}
	if r.conn.ConnectionState().TLS.DidResume {
		t.Fatal("a ticket resumed on an instance with another Retry secret")
	}
}
