package pipeline

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/frames/ws"
)

// idleConns is how many idle connections the idle-memory tests hold: enough
// that per-connection costs dominate the gateway's fixed ones.
const idleConns = 200

// idleFigures is what an idle connection costs the process, measured as
// deltas over idleConns connections.
type idleFigures struct {
	goroutines float64 // per connection
	stack      float64 // goroutine stack bytes per connection
}

// measureIdle opens idleConns connections with open (each one request,
// then idle), and returns what they added once the process has settled.
// The clients run no goroutines (each connection is read synchronously by
// open), and the backend's pool is warmed first, so the deltas are the
// gateway's front.
func measureIdle(t *testing.T, open func(t *testing.T) net.Conn) idleFigures {
	t.Helper()
	for range 8 { // warm the code paths and the upstream pool
		open(t).Close()
	}
	g0, s0 := settledIdle()
	conns := make([]net.Conn, 0, idleConns)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range idleConns {
		conns = append(conns, open(t))
	}
	g1, s1 := settledIdle()
	return idleFigures{
		goroutines: float64(g1-g0) / idleConns,
		stack:      float64(s1-s0) / idleConns,
	}
}

// settledIdle waits until the goroutine count stops moving (the streams of
// the last requests retire), collects twice (a collection shrinks idle
// goroutines' stacks), and returns the goroutines and stack bytes in use.
func settledIdle() (goroutines int, stack uint64) {
	last := -1
	for range 50 { // bounded: 5 s
		n := runtime.NumGoroutine()
		if n == last {
			break
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
	for range 4 { // each collection halves a stack at most
		runtime.GC()
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return runtime.NumGoroutine(), s[0].Value.Uint64()
}

func idleGateway(t *testing.T) string {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)+"\n[observability]\naccess_log = false\n")
	return g.Addr("web").String()
}

// openIdleH1 sends one keep-alive GET and reads its whole response.
func openIdleH1(addr string) func(t *testing.T) net.Conn {
	return func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || br.Buffered() != 0 || resp.Close {
			t.Fatalf("status %d, %d bytes after the response, close %v", resp.StatusCode, br.Buffered(), resp.Close)
		}
		c.SetDeadline(time.Time{})
		return c
	}
}

// An idle connection must cost one goroutine, whose stack has shrunk back
// to the runtime's small sizes: the per-connection memory of an idle
// keep-alive client is bounded by what it holds while it waits, not by
// what its last request needed.
func TestIdleConnections_OneSmallGoroutineEach(t *testing.T) {
	addr := idleGateway(t)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) net.Conn
	}{{"H1", openIdleH1(addr)}, {"H2", openIdleH2(addr)}} {
		t.Run(tc.name, func(t *testing.T) {
			f := measureIdle(t, tc.open)
			t.Logf("%s idle: %.2f goroutines, %.0f stack bytes per connection", tc.name, f.goroutines, f.stack)
			if f.goroutines > 1.05 {
				t.Errorf("%.2f goroutines per idle %s connection, want 1", f.goroutines, tc.name)
			}
			// A race build's frames are larger: only the count holds there.
			if !raceEnabled && f.stack > 4<<10+256 {
				t.Errorf("%.0f stack bytes per idle %s connection, want at most 4 KiB", f.stack, tc.name)
			}
		})
	}
}

// openIdleH2 opens an h2c connection (prior knowledge) and completes one
// GET on stream 1.
func openIdleH2(addr string) func(t *testing.T) net.Conn {
	return func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, http2.ClientPreface)
		fr := http2.NewFramer(c, c)
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: getBlock(), EndStream: true, EndHeaders: true})
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				fr.WriteSettingsAck()
			}
			if f.Header().StreamID == 1 && f.Header().Flags.Has(http2.FlagDataEndStream) {
				break
			}
		}
		c.SetDeadline(time.Time{})
		return c
	}
}

// An idle WebSocket tunnel (an H1 upgrade, no message yet) costs the
// gateway two goroutines: the client's reader and the stream actor; the
// relays toward the client and toward the backend have none while their
// side is silent. The backend here holds its switched connections without
// a goroutine, so the count is the gateway's alone.
func TestIdleTunnels_TwoGoroutinesEach(t *testing.T) {
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			ws.AcceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		brw.Flush()
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)+"\n[observability]\naccess_log = false\n")
	addr := g.Addr("web").String()
	f := measureIdle(t, func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || br.Buffered() != 0 {
			t.Fatalf("upgrade: status %d, %d bytes after the head", resp.StatusCode, br.Buffered())
		}
		c.SetDeadline(time.Time{})
		return c
	})
	t.Logf("idle tunnel: %.2f goroutines, %.0f stack bytes per tunnel", f.goroutines, f.stack)
	if f.goroutines > 2.05 {
		t.Errorf("%.2f goroutines per idle tunnel, want at most 2", f.goroutines)
	}
}
