package pipeline

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// goroutinesCreated reads the runtime's count of goroutines created.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func smallH1Backend(b *testing.B) string {
	body := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// BenchmarkH2TLSProxy measures one small GET through the H2 (TLS, ALPN h2)
// front to an H1 backend, 16 streams at a time over 4 connections (client
// and backend in-process: profile with -cpuprofile and read the gateway's
// share). It reports the goroutines created per request, client's and
// backend's included (the Go H2 client and the H1 server each start some).
func BenchmarkH2TLSProxy(b *testing.B) {
	be := smallH1Backend(b)
	cert, key := testcert.WriteAs(b, b.TempDir(), "localhost", "cert.pem", "key.pem")
	g := startGateway(b, `
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
[[listeners.backends]]
address = "`+be+`"

[observability]
access_log = false
`)
	url := "https://localhost:" + itoaPort(g.Addr("tls")) + "/"
	clients := make([]*http.Client, 4)
	for i := range clients {
		var p http.Protocols
		p.SetHTTP2(true)
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &p, MaxConnsPerHost: 1}
		b.Cleanup(tr.CloseIdleConnections)
		clients[i] = &http.Client{Transport: tr}
	}
	b.ReportAllocs()
	b.SetParallelism(16 / runtime.GOMAXPROCS(0))
	next := make(chan int, 64)
	for i := range 64 {
		next <- i % len(clients)
	}
	g0 := goroutinesCreated()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[<-next]
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/op")
}

func itoaPort(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// BenchmarkH2IdleConn measures what an idle h2c connection holds in the
// gateway after one small GET: heap bytes and goroutines per connection
// (client and backend are in-process too: the client's share is measured
// with the gateway's, so compare before/after, not absolute values).
func BenchmarkH2IdleConn(b *testing.B) {
	const conns = 500
	be := smallH1Backend(b)
	g := startGateway(b, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)+"\n[observability]\naccess_log = false\n")
	addr := g.Addr("web").String()
	for range b.N {
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		n0 := runtime.NumGoroutine()
		var open []net.Conn
		for range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			open = append(open, c)
			c.Write([]byte(http2.ClientPreface))
			fr := http2.NewFramer(c, c)
			fr.WriteSettings()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: getBlock(), EndStream: true, EndHeaders: true})
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				if f.Header().StreamID == 1 && f.Header().Flags.Has(http2.FlagDataEndStream) {
					break
				}
			}
		}
		time.Sleep(200 * time.Millisecond) // the streams retire
		runtime.GC()
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/conns, "heapB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-n0)/conns, "goroutines/conn")
		for _, c := range open {
			c.Close()
		}
	}
}

// getBlock is the HPACK block of GET http://x/ (static-table and literal
// fields, no dynamic table state).
func getBlock() []byte {
	return []byte{0x82, 0x86, 0x84, 0x41, 0x01, 'x'}
}
