package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wrkNotFound is wrk 4.1's summary of a run where every response was 404.
const wrkNotFound = `Running 1s test @ http://127.0.0.1:18777/nonexistent
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.73ms   17.68ms 106.35ms   89.45%
    Req/Sec   294.90    218.73   613.00     60.00%
  Latency Distribution
     50%    3.91ms
     75%   14.90ms
     90%   29.86ms
     99%   92.50ms
  296 requests in 1.04s, 150.31KB read
  Socket errors: connect 0, read 3, write 1, timeout 0
  Non-2xx or 3xx responses: 296
Requests/sec:    284.32
Transfer/sec:    144.38KB
`

func TestParseWrk_CountsNon2xxAndSocketErrorsAsErrors(t *testing.T) {
	r, err := parseWrk([]byte(wrkNotFound))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors != 296+4 || r.RPS != 0 {
		t.Fatalf("requests %d, errors %d, rps %v; want 0, 300, 0", r.Requests, r.Errors, r.RPS)
	}
	if r.P50 != 3910*time.Microsecond || r.P99 != 92500*time.Microsecond || r.Elapsed != 1040*time.Millisecond {
		t.Fatalf("p50 %v, p99 %v, elapsed %v", r.P50, r.P99, r.Elapsed)
	}
}

func TestParseWrk_RefusesOutputWithoutSummary(t *testing.T) {
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Fatal("parsed a run that never connected")
	}
}

func tool(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return bin
}

// handler answers /ok with 100 bytes and anything else with 404.
var handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ok" {
		http.NotFound(w, r)
		return
	}
	w.Write(make([]byte, 100))
})

func TestWrk_MeasuresServedRequests(t *testing.T) {
	bin := tool(t, "wrk")
	srv := httptest.NewServer(handler)
	defer srv.Close()
	r, err := Wrk(context.Background(), bin, srv.URL+"/ok", 1, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.RPS <= 0 || r.P99 <= 0 || r.P99 < r.P50 {
		t.Fatalf("%+v", r)
	}
	r, err = Wrk(context.Background(), bin, srv.URL+"/missing", 1, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors == 0 {
		t.Fatalf("404s counted as served: %+v", r)
	}
}

func TestH2load_MeasuresServedRequestsOverTLS(t *testing.T) {
	bin := tool(t, "h2load")
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	r, err := H2load(context.Background(), bin, t.TempDir(), srv.URL+"/ok", 1, 2, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.RPS <= 0 || r.P99 <= 0 || r.P99 < r.P50 {
		t.Fatalf("%+v", r)
	}
	r, err = H2load(context.Background(), bin, t.TempDir(), srv.URL+"/missing", 1, 2, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.P99 != 0 {
		t.Fatalf("404 latencies counted: %+v", r)
	}
}

func TestH3_MeasuresServedRequestsOverConnsAndStreams(t *testing.T) {
	cert, pool := testCert(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http3.Server{Handler: handler, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context { conns.Add(1); return ctx }}
	go srv.Serve(pc)
	defer func() { srv.Close(); pc.Close() }()
	r, err := H3(context.Background(), "https://"+pc.LocalAddr().String()+"/ok", &tls.Config{RootCAs: pool, ServerName: "example.com"}, 3, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.P99 <= 0 {
		t.Fatalf("%+v", r)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d QUIC connections, want 3", n)
	}
}

func TestOpenIdle_HoldsConnectionsFromEverySource(t *testing.T) {
	cert, pool := testCert(t)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP2(true)
	for _, proto := range []string{IdleH1, IdleH2C, IdleH2} {
		t.Run(proto, func(t *testing.T) {
			var (
				open  atomic.Int64
				mu    sync.Mutex
				peers = map[netip.Addr]bool{}
			)
			srv := httptest.NewUnstartedServer(handler)
			srv.Config.Protocols = &p
			srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
				switch s {
				case http.StateNew:
					open.Add(1)
				case http.StateClosed, http.StateHijacked:
					open.Add(-1)
				}
			}
			srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
				mu.Lock()
				peers[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()] = true
				mu.Unlock()
				return ctx
			}
			if proto == IdleH2 {
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			sources := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
			idle, err := OpenIdle(context.Background(), proto, srv.Listener.Addr().String(), "/ok", 40, sources,
				&tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			seen := len(peers)
			mu.Unlock()
			if idle.Len() != 40 || open.Load() != 40 || seen != 2 {
				t.Fatalf("holding %d, server sees %d open from %d sources; want 40, 40, 2", idle.Len(), open.Load(), seen)
			}
			idle.Close()
			if _, err := OpenIdle(context.Background(), proto, srv.Listener.Addr().String(), "/missing", 1, sources,
				&tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"h2"}}); err == nil {
				t.Fatal("a 404 counted as an idle connection")
			}
		})
	}
}

// testCert is httptest's self-signed certificate (example.com, 127.0.0.1)
// and a pool trusting it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	cert := srv.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	srv.Close()
	return cert, pool
}
