package health

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	ghealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// httpBackend is a real HTTP/1.1 server on 127.0.0.1 whose /healthz
// answers status (and "ok" in the body).
type httpBackend struct {
	addr   string
	status atomic.Int32
	srv    *http.Server
	done   sync.WaitGroup
}

func startHTTP(t *testing.T) *httpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hb := &httpBackend{addr: ln.Addr().String()}
	hb.status.Store(200)
	hb.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(hb.status.Load()))
		w.Write([]byte("status ok\n"))
	})}
	hb.done.Go(func() { hb.srv.Serve(ln) })
	t.Cleanup(func() { hb.srv.Close(); hb.done.Wait() })
	return hb
}

// An http check follows rise/fall both ways, sets backend_up, counts each
// transition once, and records check latency; with two of three down the pool panics and routes to all.
func TestHTTP_RiseFall(t *testing.T) {
	hbs := []*httpBackend{startHTTP(t), startHTTP(t), startHTTP(t)}
	p, c := setup(t, []string{hbs[0].addr, hbs[1].addr, hbs[2].addr}, func(cfg *conf.Pool) {
		cfg.HealthCheck = fastChecks("http")
		cfg.HealthCheck.Path = "/healthz"
		cfg.HealthCheck.BodyContains = "ok"
	})
	b0 := p.Backends()[0]
	eventually(t, "first checks", func() bool { return c.bs[0].m.duration != nil && histCount(c, 0) >= 3 })
	if !b0.Healthy() || c.bs[0].m.up.Get() != 1 {
		t.Fatal("healthy backend not up")
	}
	hbs[0].status.Store(503)
	eventually(t, "backend 0 down", b0.Down)
	if c.bs[0].m.up.Get() != 0 {
		t.Fatal("backend_up still 1")
	}
	for range 100 {
		if b, _ := p.Pick(route.Key{}); b == b0 {
			t.Fatal("picked a down backend")
		}
	}
	hbs[1].status.Store(500)
	eventually(t, "backend 1 down", p.Backends()[1].Down)
	if !p.Panicking() {
		t.Fatal("one of three healthy should put the pool in panic mode")
	}
	seen := map[*route.Backend]bool{}
	for range 300 {
		b, err := p.Pick(route.Key{})
		if err != nil {
			t.Fatal(err)
		}
		seen[b] = true
	}
	if len(seen) != 3 {
		t.Fatalf("panic mode reached %d of 3 backends", len(seen))
	}
	hbs[0].status.Store(200)
	hbs[1].status.Store(200)
	eventually(t, "backends up again", func() bool { return b0.Healthy() && p.Backends()[1].Healthy() })
	if c.bs[0].m.up.Get() != 1 || p.Panicking() {
		t.Fatal("recovery not reflected")
	}
	l := `{pool="hp",backend="` + hbs[0].addr + `",to=`
	if up, down := scraped(c, "expressgateway_backend_health_transitions_total"+l+`"up"}`), scraped(c, "expressgateway_backend_health_transitions_total"+l+`"down"}`); up != 1 || down != 1 {
		t.Fatalf("backend 0 transitions: %d up, %d down; want 1 and 1", up, down)
	}
}

// histCount is the number of checks of backend i, read from the
// histogram's _count series as a scrape shows it.
func histCount(c *Checker, i int) uint64 {
	return scraped(c, `expressgateway_health_check_duration_seconds_count{pool="`+c.pool.Name()+`",backend="`+c.bs[i].b.Address+`"}`)
}

// scraped is the value of series name in the checker's metrics set.
func scraped(c *Checker, name string) uint64 {
	var sb strings.Builder
	c.set.WritePrometheus(&sb)
	for line := range strings.Lines(sb.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// A body that lacks body_contains fails the check even with status 200.
func TestHTTP_BodyMismatchFails(t *testing.T) {
	hb := startHTTP(t)
	p, _ := setup(t, []string{hb.addr}, func(cfg *conf.Pool) {
		cfg.HealthCheck = fastChecks("http")
		cfg.HealthCheck.Path = "/healthz"
		cfg.HealthCheck.BodyContains = "all good"
	})
	eventually(t, "down on body mismatch", p.Backends()[0].Down)
}

// A tcp check fails once the listener is closed and passes once it is back.
func TestTCP_CloseAndReopen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	serve := func(ln net.Listener) {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
	}
	serve(ln)
	p, _ := setup(t, []string{addr}, func(cfg *conf.Pool) { cfg.HealthCheck = fastChecks("tcp") })
	b := p.Backends()[0]
	ln.Close()
	eventually(t, "down after close", b.Down)
	if _, err := p.Pick(route.Key{}); err == nil && !p.Panicking() {
		t.Fatal("picked with the only backend down")
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	serve(ln2)
	eventually(t, "up after reopen", b.Healthy)
	ln2.Close()
	wg.Wait()
}

// A grpc check follows grpc.health.v1 SERVING / NOT_SERVING.
func TestGRPC_ServingStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := ghealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })

	hs.SetServingStatus("eg.Test", healthpb.HealthCheckResponse_SERVING)
	p, _ := setup(t, []string{ln.Addr().String()}, func(cfg *conf.Pool) {
		cfg.HealthCheck = fastChecks("grpc")
		cfg.HealthCheck.Service = "eg.Test"
	})
	b := p.Backends()[0]
	hs.SetServingStatus("eg.Test", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "down on NOT_SERVING", b.Down)
	hs.SetServingStatus("eg.Test", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "up on SERVING", b.Healthy)
}

// Never more than one probe of a backend in flight, however slow it is.
func TestProbe_OneInFlight(t *testing.T) {
	var inFlight, most atomic.Int32
	block := make(chan struct{})
	pr := proberFunc(func(ctx context.Context, _ *route.Backend) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	cfg := conf.Pool{Name: "one", Backends: []conf.Backend{{Address: "10.0.0.1:80"}}, HealthCheck: &conf.HealthCheck{Type: "tcp", IntervalMs: 10, TimeoutMs: 10}}
	if err := cfg.Prepare("p"); err != nil {
		t.Fatal(err)
	}
	cfg.HealthCheck.TimeoutMs = 1000 // longer than the interval: rounds overlap
	p, err := route.NewPool(cfg, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(p, cfg, testLogger(t), Options{Prober: pr, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	eventually(t, "a probe", func() bool { return inFlight.Load() == 1 })
	for range 10 { // ten intervals pass with the probe stuck
		eventuallyTick()
	}
	close(block)
	c.Stop()
	if most.Load() != 1 {
		t.Fatalf("%d probes of one backend in flight at once", most.Load())
	}
}

type proberFunc func(context.Context, *route.Backend) error

func (f proberFunc) Probe(ctx context.Context, b *route.Backend) error { return f(ctx, b) }
func (proberFunc) Close()                                              {}
