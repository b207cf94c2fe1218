package quicrelay

import (
	"context"
	"crypto/rand"
	"io"

	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestBackendCertificate_WrongCARefused: a backend whose certificate the
// relay's roots do not sign is never used: the client's connection is
// closed with CodeNoBackend and the backend sees no connection or stream.
func TestBackendCertificate_WrongCARefused(t *testing.T) {
	cert, _, _ := loadPair(t, "backend")
	_, otherRoots, _ := loadPair(t, "someone-else")
	streams := make(chan struct{}, 1)
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		if _, err := c.AcceptStream(context.Background()); err == nil {
			streams <- struct{}{}
		}
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: otherRoots})
	errs := connectErrors(t.Name(), be.addr)
	before := errs.Get()
	c := f.mustDial(t)
	if s, err := c.OpenStreamSync(context.Background()); err == nil {
		s.Write([]byte("must not arrive"))
	}
	if ae := appError(t, c); ae.ErrorCode != CodeNoBackend {
		t.Fatalf("client closed with %v, want CodeNoBackend", ae)
	}
	if errs.Get() != before+1 {
		t.Fatalf("connect errors %d, want %d", errs.Get(), before+1)
	}
	select {
	case <-be.accepted:
		t.Fatal("the backend completed a handshake with an unverified relay")
	case <-streams:
		t.Fatal("the backend got a stream")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestPoolFailover_FirstDownSecondServes: the first backend does not
// answer; the relay tries the next and the client is served.
func TestPoolFailover_FirstDownSecondServes(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{testALPN}, echoBackend)
	dead := deadAddr(t)
	f := startFront(t, frontOpts{backends: []string{dead, be.addr}, roots: roots, connect: 300 * time.Millisecond})
	errs := connectErrors(t.Name(), dead)
	before := errs.Get()
	// Round robin: two connections, so one starts on the dead backend.
	for range 2 {
		c := f.mustDial(t)
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("x"))
		s.Close()
		if b := readAll(t, s); b != "echo:x" {
			t.Fatalf("echo %q", b)
		}
	}
	if errs.Get() == before {
		t.Fatal("the dead backend was never tried")
	}
	// Every backend down: a clear application close.
	f2 := startFront(t, frontOpts{backends: []string{dead}, roots: roots, connect: 300 * time.Millisecond})
	c := f2.mustDial(t)
	if ae := appError(t, c); ae.ErrorCode != CodeNoBackend || ae.ErrorMessage == "" {
		t.Fatalf("all down: %v", ae)
	}
}

// TestALPN_PassthroughAndNarrowing: an ALPN no stack knows crosses end to
// end (the backend negotiates what the client chose); an alpn list
// refuses the others at the handshake.
func TestALPN_PassthroughAndNarrowing(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	negotiated := make(chan string, 4)
	be := startBackend(t, cert, []string{"other/2", testALPN}, func(c *quic.Conn) {
		negotiated <- c.ConnectionState().TLS.NegotiatedProtocol
		echoBackend(c)
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t, testALPN, "other/2")
	if p := c.ConnectionState().TLS.NegotiatedProtocol; p != testALPN {
		t.Fatalf("client negotiated %q, want its first choice", p)
	}
	s, _ := c.OpenStreamSync(context.Background())
	s.Write([]byte("a"))
	s.Close()
	if b := readAll(t, s); b != "echo:a" {
		t.Fatalf("echo %q", b)
	}
	if p := <-negotiated; p != testALPN {
		t.Fatalf("backend negotiated %q", p)
	}

	narrow := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots, alpn: []string{"other/2"}})
	if _, err := narrow.dial(t, testALPN); err == nil {
		t.Fatal("an ALPN outside alpn was accepted")
	}
	c = narrow.mustDial(t, testALPN, "other/2")
	if p := c.ConnectionState().TLS.NegotiatedProtocol; p != "other/2" {
		t.Fatalf("narrowed: negotiated %q", p)
	}
	s, _ = c.OpenStreamSync(context.Background())
	s.Write([]byte("b"))
	s.Close()
	if b := readAll(t, s); b != "echo:b" {
		t.Fatalf("narrowed echo %q", b)
	}
}

// slowSink reads a stream to its end, pausing between chunks so that the
// writer outruns it.
func slowSink(c *quic.Conn, done chan<- int64) {
	s, err := c.AcceptStream(context.Background())
	if err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	var n int64
	for i := 0; ; i++ {
		k, err := s.Read(buf)
		n += int64(k)
		if err != nil {
			break
		}
		if i%256 == 0 { // every 4 MiB
			time.Sleep(2 * time.Millisecond)
		}
	}
	s.Write([]byte("done"))
	s.Close()
	done <- n
}

// TestBigStream_SlowReaderInflightBounded: 1 GiB over one stream to a
// reader slower than the client: every byte arrives, the relay's copy
// buffers never hold more than one buffer, and the heap does not grow
// with the transfer (QUIC flow control is the only other bound).
func TestBigStream_SlowReaderInflightBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	total := int64(1 << 30)
	if raceEnabled {
		total = 64 << 20
	}
	cert, roots, _ := loadPair(t, "backend")
	got := make(chan int64, 1)
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) { slowSink(c, got) })
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t)
	s, err := c.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse
	var heapPeak uint64
	start := time.Now()
	s.SetWriteDeadline(start.Add(5 * time.Minute))
	for sent := int64(0); sent < total; sent += int64(len(chunk)) {
		if _, err := s.Write(chunk); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
		if sent%(64<<20) == 0 {
			runtime.ReadMemStats(&ms)
			heapPeak = max(heapPeak, ms.HeapInuse)
		}
	}
	s.Close()
	s.SetReadDeadline(time.Now().Add(time.Minute))
	if b := readAll(t, s); b != "done" {
		t.Fatalf("answer %q", b)
	}
	el := time.Since(start)
	if n := <-got; n != total {
		t.Fatalf("backend got %d bytes, want %d", n, total)
	}
	peak := f.relay.InflightPeak()
	t.Logf("%d MiB in %v: %.0f MiB/s; relay in-flight peak %d bytes; heap %d → peak %d MiB",
		total>>20, el.Round(time.Millisecond), float64(total)/(1<<20)/el.Seconds(), peak, heap0>>20, heapPeak>>20)
	if peak <= 0 || peak > copyBuf {
		t.Fatalf("in-flight peak %d bytes, want 1..%d (one copy buffer)", peak, copyBuf)
	}
	// Both connections' windows (4 MiB each here) and the buffers, with
	// room for the test's own garbage: far below the transfer.
	if heapPeak > heap0+64<<20 {
		t.Fatalf("heap grew from %d to %d MiB during the transfer", heap0>>20, heapPeak>>20)
	}
}

// TestCircuitBreaker_MaxConnections: with max_connections = 1 the second
// concurrent client is refused with CodeNoBackend; once the first leaves,
// the backend takes a new one.
func TestCircuitBreaker_MaxConnections(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{testALPN}, echoBackend)
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots, maxConns: 1})
	ask := func(c *quic.Conn) string {
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("q"))
		s.Close()
		return readAll(t, s)
	}
	first := f.mustDial(t)
	if b := ask(first); b != "echo:q" {
		t.Fatalf("first: %q", b)
	}
	second := f.mustDial(t)
	if ae := appError(t, second); ae.ErrorCode != CodeNoBackend {
		t.Fatalf("second: %v", ae)
	}
	first.CloseWithError(0, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := f.mustDial(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := third.OpenStreamSync(ctx)
		cancel()
		if err == nil {
			s.Write([]byte("q"))
			s.Close()
			s.SetReadDeadline(time.Now().Add(time.Second))
			if b, err := io.ReadAll(s); err == nil && string(b) == "echo:q" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend's place was never given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDatagrams_BackendWithoutThemCountedDropped: the client may send
// datagrams (the front offers them) but the backend takes none: each is
// counted as dropped toward the backend, and streams still work.
func TestDatagrams_BackendWithoutThemCountedDropped(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackendConf(t, cert, []string{testALPN}, &quic.Config{MaxIdleTimeout: 10 * time.Second}, echoBackend)
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	m := newConnSeries(t.Name(), be.addr)
	before := m.dropToBackend.Get()
	c := f.mustDial(t)
	s, _ := c.OpenStreamSync(context.Background())
	s.Write([]byte("s"))
	s.Close()
	if b := readAll(t, s); b != "echo:s" {
		t.Fatalf("echo %q", b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.dropToBackend.Get() == before {
		if err := c.SendDatagram([]byte("lost")); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("datagrams to a backend without them not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestALPN_BackendWithoutTheClientsProtocolRefused: a backend that does
// not speak the ALPN the client negotiated is a failed connect: the client
// is closed with CodeNoBackend, never relayed to a different protocol.
func TestALPN_BackendWithoutTheClientsProtocolRefused(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{"other/2"}, echoBackend)
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	errs := connectErrors(t.Name(), be.addr)
	before := errs.Get()
	c := f.mustDial(t, testALPN)
	if ae := appError(t, c); ae.ErrorCode != CodeNoBackend {
		t.Fatalf("closed with %v, want CodeNoBackend", ae)
	}
	if errs.Get() != before+1 {
		t.Fatal("the refused handshake was not counted as a connect error")
	}
}
