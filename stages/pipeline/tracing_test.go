package pipeline

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

func tracingConf(endpoint string, ratio float64) conf.Tracing {
	return conf.Tracing{OTLPEndpoint: endpoint, SampleRatio: ratio, ServiceName: "edge-test"}
}

func zerologDiscard() zerolog.Logger { return zerolog.New(io.Discard) }

var errHook = errors.New("attempt failed")

// hookRequest runs every tracing hook of a request through the stream
// actor, in its order: begin, an attempt, its head, the end.
func hookRequest(set *ProxySettings, req *frames.Head, conn *stages.ConnInfo, b *route.Backend, resp *upstream.Response, rec *record) {
	set.Tracing.begin(&rec.trace, req, conn, rec.start)
	rec.trace.upstream(req, b, 0)
	rec.trace.upstreamHead(resp, nil)
	rec.trace.upstreamHead(nil, errHook)
	rec.trace.end(rec)
}

func hookFixture() (*ProxySettings, *frames.Head, *stages.ConnInfo, *route.Backend, *upstream.Response, *record) {
	req := &frames.Head{Method: "GET", Path: "/p?q", Authority: "x"}
	req.Fields.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	conn := &stages.ConnInfo{Proto: "HTTP/1.1", Remote: netip.MustParseAddrPort("127.0.0.1:5")}
	return &ProxySettings{}, req, conn, &route.Backend{Address: "127.0.0.1:1", Protocol: "h1"},
		&upstream.Response{Head: &frames.Head{Status: 200}}, &record{start: time.Now(), status: 200}
}

// Tracing off costs the request path no allocation, and leaves its
// trace headers as they came.
func TestTracing_OffHooksAllocateNothing(t *testing.T) {
	set, req, conn, b, resp, rec := hookFixture()
	if n := testing.AllocsPerRun(1000, func() { hookRequest(set, req, conn, b, resp, rec) }); n != 0 {
		t.Fatalf("tracing off: %v allocations per request, want 0", n)
	}
	if len(req.Fields) != 1 || req.Fields.Value("traceparent") != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("tracing off changed the request's fields: %v", req.Fields)
	}
}

// BenchmarkTracingHooks is the cost of the hooks of one request: off (the
// figure that must read 0 allocs/op), and on with every request sampled
// (spans built, queued and exported to a receiver in the test).
func BenchmarkTracingHooks(b *testing.B) {
	b.Run("off", func(b *testing.B) {
		set, req, conn, be, resp, rec := hookFixture()
		b.ReportAllocs()
		for b.Loop() {
			hookRequest(set, req, conn, be, resp, rec)
		}
	})
	b.Run("sampled", func(b *testing.B) {
		set, req, conn, be, resp, rec := hookFixture()
		rcv := startReceiver(b)
		tr, err := newTracing(tracingConf(rcv.url, 1), zerologDiscard())
		if err != nil {
			b.Fatal(err)
		}
		defer tr.shutdown(time.Second)
		set.Tracing = tr
		b.ReportAllocs()
		for b.Loop() {
			hookRequest(set, req, conn, be, resp, rec)
		}
	})
}

func TestTracing_ErrorTypesAreBounded(t *testing.T) {
	for err, want := range map[error]string{
		upstream.ErrTimeout:           "timeout",
		route.ErrTryTimeout:           "timeout",
		&route.DialError{Err: io.EOF}: "connect",
		errResponseTooLarge:           "response_too_large",
		&frames.ResetError{Code: 1}:   "reset",
		errors.New("something else"):  "_OTHER",
	} {
		if got := errorType(err); got != want {
			t.Errorf("errorType(%v) = %q, want %q", err, got, want)
		}
	}
	if m, o := spanMethod("BREW"); m != "_OTHER" || o != "BREW" || spanName(m) != "HTTP" {
		t.Errorf("unknown method: %q %q %q", m, o, spanName(m))
	}
	if h, p := splitAuthority("[::1]", 443); h != "::1" || p != 443 {
		t.Errorf("splitAuthority: %q %d", h, p)
	}
}

// BenchmarkH1ProxyTraced is BenchmarkH1Proxy with every request traced
// and exported to a receiver in the test: the price of sample_ratio = 1.
func BenchmarkH1ProxyTraced(b *testing.B) {
	rcv := startReceiver(b)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("0123456789abcdef")) })}
	go srv.Serve(ln)
	defer srv.Close()
	g := startGateway(b, h1Listener("web", `
[[listeners.backends]]
address = "`+ln.Addr().String()+`"`)+"\n[observability]\naccess_log = false\n[observability.tracing]\notlp_endpoint = \""+rcv.url+"\"\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", g.Addr("web").String())
		if err != nil {
			b.Error(err)
			return
		}
		defer func() { c.Close() }()
		br := bufio.NewReader(c)
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		for pb.Next() {
			c.Write(req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				c.Close()
				c, _ = net.Dial("tcp", g.Addr("web").String())
				br = bufio.NewReader(c)
			}
		}
	})
}
