package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	ghealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/expressgateway/expressgateway/stages/route"
)

// lbBackend is a real net/http backend on loopback that names itself in
// the x-backend response field and counts what it served. Its handler
// can be swapped (status, delay) while it runs, and it can be killed and
// brought back on the same address.
type lbBackend struct {
	name   string
	addr   string
	served atomic.Int64
	status atomic.Int32 // response status (default 200)
	health atomic.Int32 // /healthz status (default 200)
	delay  atomic.Int64 // nanoseconds before answering

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func startLB(t *testing.T, name string) *lbBackend {
	t.Helper()
	b := &lbBackend{name: name}
	b.status.Store(200)
	b.health.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *lbBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/healthz" {
		w.WriteHeader(int(b.health.Load()))
		return
	}
	if d := b.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	b.served.Add(1)
	w.Header().Set("x-backend", b.name)
	w.WriteHeader(int(b.status.Load()))
	io.WriteString(w, b.name)
}

func (b *lbBackend) serve(ln net.Listener) {
	srv := &http.Server{Handler: b}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	b.wg.Go(func() { srv.Serve(ln) })
}

// kill closes the listener and every connection, as a crash would.
func (b *lbBackend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
		b.wg.Wait()
	}
}

// revive serves again on the same address.
func (b *lbBackend) revive(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after the kill
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.serve(ln)
}

// lbPool is a [[pools]] section over bs with the given weights (nil: all
// 1) and extra lines (algorithm and sub-sections).
func lbPool(name string, bs []*lbBackend, weights []int, extra string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "[[pools]]\nname = %q\n%s\n", name, strings.TrimSpace(extra))
	for i, b := range bs {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		fmt.Fprintf(&sb, "[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\nweight = %d\n", b.addr, w)
	}
	return sb.String()
}

// lbGateway starts a gateway with one h1 listener "web" on pool.
func lbGateway(t *testing.T, pool, name string, runtime string) *testGateway {
	t.Helper()
	cfg := h1Listener("web", `pool = "`+name+`"`)
	if runtime != "" {
		cfg = "[runtime]\n" + runtime + "\n" + cfg
	}
	return startGateway(t, cfg+pool)
}

// get sends one request and returns the status and the backend named.
func get(t testing.TB, c *http.Client, method, url string, h http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("x-backend"), res.Header
}

// shares sends n GETs (key(i) adds request fields) and returns each
// backend's share of them by name.
func shares(t *testing.T, c *http.Client, url string, n int, key func(i int) http.Header) map[string]float64 {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		var h http.Header
		if key != nil {
			h = key(i)
		}
		st, be, _ := get(t, c, "GET", url, h)
		if st != 200 {
			t.Fatalf("request %d: status %d", i, st)
		}
		counts[be]++
	}
	out := map[string]float64{}
	for k, v := range counts {
		out[k] = float64(v) / float64(n)
	}
	return out
}

// wantWeighted checks each backend's share is within tol of its weight's.
func wantWeighted(t *testing.T, got map[string]float64, bs []*lbBackend, weights []int, tol float64) {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, b := range bs {
		want := float64(weights[i]) / float64(total)
		if math.Abs(got[b.name]-want) > tol {
			t.Errorf("%s (weight %d): share %.3f, want %.3f ± %.3f (all %v)", b.name, weights[i], got[b.name], want, tol, got)
		}
	}
}

func threeBackends(t *testing.T) []*lbBackend {
	return []*lbBackend{startLB(t, "a"), startLB(t, "b"), startLB(t, "c")}
}

func counter(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }

// Every weight-honouring algorithm is selectable from config and splits
// 1200 sequential requests by weight 1:2:3, in order and within 0.06 (4σ
// of the binomial spread at this count; least_conn 0.12, see below). The hashing ones hash a header that
// varies per request; least_conn runs with no idle upstream connections,
// so its count is the connections in use and must return to zero.
func TestLB_AlgorithmsHonourWeights(t *testing.T) {
	const n = 1200
	weights := []int{1, 2, 3}
	for _, tc := range []struct {
		algo, extra, runtime string
		tol                  float64
	}{
		{"round_robin", "", "", 0.01}, // smooth WRR is exact
		{"random", "", "", 0.06},
		{"least_request", "", "", 0.06},
		{"p2c", "", "", 0.06},
		// A connection closes just after its response reaches the client,
		// so the next pick may still count it: that pushes a sequential
		// split at worst to 0.23/0.36/0.41 (the chain that never repeats a
		// backend), still ordered by weight.
		{"least_conn", "", "upstream_max_idle_per_backend = 0", 0.12},
		{"ring_hash", `hash_key = "header:x-user"`, "", 0.06},
		{"maglev", `hash_key = "header:x-user"`, "", 0.06},
		{"sticky", "", "", 0.06}, // no cookie sent: the fallback's split
	} {
		t.Run(tc.algo, func(t *testing.T) {
			bs := threeBackends(t)
			name := "w_" + tc.algo
			g := lbGateway(t, lbPool(name, bs, weights, "algorithm = \""+tc.algo+"\"\n"+tc.extra), name, tc.runtime)
			got := shares(t, client(t), g.url("web"), n, func(i int) http.Header {
				return http.Header{"X-User": {"user-" + strconv.Itoa(i)}}
			})
			wantWeighted(t, got, bs, weights, tc.tol)
			if got["a"] >= got["b"] || got["b"] >= got["c"] {
				t.Errorf("shares %v not ordered by weight 1:2:3", got)
			}
			if tc.algo == "least_conn" {
				// The last connection closes just after its response.
				lbWait(t, "connection counts back to zero (ConnOpen/ConnClosed balanced)", func() bool {
					for _, b := range g.pools[name].Backends() {
						if b.Conns() != 0 {
							return false
						}
					}
					return true
				})
			}
		})
	}
}

// source_ip keys on the client address: every client stays on one
// backend, and 300 clients (127.0.0.2.., one connection each) split by
// weight within 0.08.
func TestLB_SourceIP_StickyAndWeighted(t *testing.T) {
	bs := threeBackends(t)
	weights := []int{1, 2, 3}
	g := lbGateway(t, lbPool("sip", bs, weights, `algorithm = "source_ip"`), "sip", "")
	counts := map[string]int{}
	const clients = 1000 // σ of a 1/3 share ≈ 0.015: the ±0.08 bound is > 5σ
	for i := range clients {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		first := ""
		for j := range 3 {
			st, be, _ := get(t, c, "GET", g.url("web"), nil)
			if st != 200 {
				t.Fatalf("status %d", st)
			}
			if j == 0 {
				first = be
				counts[be]++
			} else if be != first {
				t.Fatalf("client %v moved from %s to %s", src.IP, first, be)
			}
		}
		tr.CloseIdleConnections()
	}
	got := map[string]float64{}
	for k, v := range counts {
		got[k] = float64(v) / clients
	}
	wantWeighted(t, got, bs, weights, 0.08)
}

// ewma is fed by real latencies: with equal weights, a backend 20 ms
// slower than the others gets a small share of sequential traffic.
func TestLB_EWMA_AvoidsSlowBackend(t *testing.T) {
	bs := threeBackends(t)
	bs[2].delay.Store(int64(50 * time.Millisecond))
	g := lbGateway(t, lbPool("ew", bs, nil, `algorithm = "ewma"`), "ew", "")
	got := shares(t, client(t), g.url("web"), 300, nil)
	// Its fair share would be 1/3; on a loaded machine the fast backends'
	// latencies are noisy too, so the bound leaves room for that noise.
	if got["c"] > 0.2 {
		t.Fatalf("slow backend got %.3f of requests under ewma, want ≤ 0.2 (all %v)", got["c"], got)
	}
	if got["a"] == 0 || got["b"] == 0 {
		t.Fatalf("fast backends not both used: %v", got)
	}
}

// A sticky pool sets its cookie on the first response; a client that
// keeps it stays on that backend; when that backend goes down it moves,
// and the new response rebinds it.
func TestLB_StickyCookie(t *testing.T) {
	bs := threeBackends(t)
	g := lbGateway(t, lbPool("st", bs, nil, "algorithm = \"sticky\"\n[pools.sticky]\ncookie = \"eg\"\nttl_sec = 60"), "st", "")
	jar, _ := cookiejar.New(nil)
	c := client(t)
	c.Jar = jar
	st, first, h := get(t, c, "GET", g.url("web"), nil)
	if st != 200 || !strings.HasPrefix(h.Get("set-cookie"), "eg=") || !strings.Contains(h.Get("set-cookie"), "Max-Age=60") {
		t.Fatalf("first response: %d, set-cookie %q", st, h.Get("set-cookie"))
	}
	for range 50 {
		_, be, h := get(t, c, "GET", g.url("web"), nil)
		if be != first {
			t.Fatalf("sticky client moved from %s to %s", first, be)
		}
		if h.Get("set-cookie") != "" {
			t.Fatal("cookie set again though the client sent it")
		}
	}
	pool := g.pools["st"]
	for _, b := range pool.Backends() {
		if strings.HasSuffix(b.Address, addrOf(bs, first)) {
			pool.SetDown(b, true)
		}
	}
	_, moved, h := get(t, c, "GET", g.url("web"), nil)
	if moved == first || h.Get("set-cookie") == "" {
		t.Fatalf("after its backend went down: served by %s (was %s), set-cookie %q", moved, first, h.Get("set-cookie"))
	}
	for range 20 {
		if _, be, _ := get(t, c, "GET", g.url("web"), nil); be != moved {
			t.Fatalf("rebound client moved from %s to %s", moved, be)
		}
	}
}

func addrOf(bs []*lbBackend, name string) string {
	for _, b := range bs {
		if b.name == name {
			return b.addr
		}
	}
	return "?"
}

// ring_hash on a cookie keeps each session on one backend.
func TestLB_HashKeyCookie_Sticky(t *testing.T) {
	bs := threeBackends(t)
	g := lbGateway(t, lbPool("rh", bs, nil, "algorithm = \"ring_hash\"\nhash_key = \"cookie:sid\""), "rh", "")
	c := client(t)
	used := map[string]bool{}
	for s := range 30 {
		h := http.Header{"Cookie": {"sid=session-" + strconv.Itoa(s)}}
		_, first, _ := get(t, c, "GET", g.url("web"), h)
		used[first] = true
		for range 5 {
			if _, be, _ := get(t, c, "GET", g.url("web"), h); be != first {
				t.Fatalf("session %d moved from %s to %s", s, first, be)
			}
		}
	}
	if len(used) != 3 {
		t.Fatalf("30 sessions used %d backends, want 3", len(used))
	}
}

// healthCheckCycle runs traffic while backend 0 is taken out by its
// check (down, no traffic) and brought back (up, traffic again).
func healthCheckCycle(t *testing.T, g *testGateway, pool string, out, back func()) {
	t.Helper()
	p := g.pools[pool]
	b0 := p.Backends()[0]
	c := client(t)
	lbWait(t, "all backends checked healthy", func() bool { return allHealthy(p) })
	out()
	lbWait(t, "backend 0 down", b0.Down)
	for range 60 {
		if st, be, _ := get(t, c, "GET", g.url("web"), nil); st != 200 || be == "a" {
			t.Fatalf("while a is down: status %d from %q", st, be)
		}
	}
	back()
	lbWait(t, "backend 0 up", b0.Healthy)
	seen := false
	for range 60 {
		if _, be, _ := get(t, c, "GET", g.url("web"), nil); be == "a" {
			seen = true
		}
	}
	if !seen {
		t.Fatal("backend a up again but got no traffic")
	}
}

func allHealthy(p *route.Pool) bool {
	for _, b := range p.Backends() {
		if !b.Healthy() {
			return false
		}
	}
	return true
}

// lbWait polls cond every 10 ms for up to 15 s.
func lbWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const fastHealth = "interval_ms = 50\ntimeout_ms = 40\nrise = 2\nfall = 2"

func TestLB_HealthCheck_HTTP(t *testing.T) {
	bs := threeBackends(t)
	g := lbGateway(t, lbPool("hh", bs, nil, "[pools.health_check]\ntype = \"http\"\npath = \"/healthz\"\nexpect_status = 200\n"+fastHealth), "hh", "")
	healthCheckCycle(t, g, "hh", func() { bs[0].health.Store(503) }, func() { bs[0].health.Store(200) })
}

func TestLB_HealthCheck_TCP(t *testing.T) {
	bs := threeBackends(t)
	g := lbGateway(t, lbPool("ht", bs, nil, "[pools.health_check]\ntype = \"tcp\"\n"+fastHealth), "ht", "")
	healthCheckCycle(t, g, "ht", bs[0].kill, func() { bs[0].revive(t) })
}

// A grpc check asks grpc.health.v1 (grpc-go's own health server) and
// follows its serving status.
func TestLB_HealthCheck_GRPC(t *testing.T) {
	var addrs []string
	var hs []*ghealth.Server
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		h := ghealth.NewServer()
		healthpb.RegisterHealthServer(s, h)
		var wg sync.WaitGroup
		wg.Go(func() { s.Serve(ln) })
		t.Cleanup(func() { s.Stop(); wg.Wait() })
		addrs = append(addrs, ln.Addr().String())
		hs = append(hs, h)
	}
	var sb strings.Builder
	sb.WriteString("[[pools]]\nname = \"hg\"\n[pools.health_check]\ntype = \"grpc\"\n" + fastHealth + "\n")
	for _, a := range addrs {
		fmt.Fprintf(&sb, "[[pools.backends]]\naddress = %q\nprotocol = \"h2\"\n", a)
	}
	g := lbGateway(t, sb.String(), "hg", "")
	p := g.pools["hg"]
	lbWait(t, "grpc backends healthy", func() bool { return allHealthy(p) })
	hs[0].SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	lbWait(t, "backend 0 down", p.Backends()[0].Down)
	if p.Backends()[1].Down() || p.Backends()[2].Down() {
		t.Fatal("serving backends marked down")
	}
	hs[0].SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	lbWait(t, "backend 0 up", p.Backends()[0].Healthy)
}

// Outlier detection ejects a backend after consecutive 5xx (no traffic
// while out) and returns it when its ejection time is up.
func TestLB_Outlier_EjectAndRecover(t *testing.T) {
	bs := threeBackends(t)
	bs[0].status.Store(500)
	g := lbGateway(t, lbPool("ol", bs, nil, `[pools.outlier]
consecutive_5xx = 3
base_ejection_ms = 400
interval_ms = 20
max_ejected_percent = 34
[pools.retry]
attempts = 0`), "ol", "")
	c := client(t)
	b0 := g.pools["ol"].Backends()[0]
	ejections := `expressgateway_backend_ejections_total{pool="ol",backend="` + bs[0].addr + `"}`
	ej0 := counter(ejections)
	for i := 0; !b0.Ejected(); i++ {
		if i > 100 {
			t.Fatal("backend answering 500 not ejected after 100 requests")
		}
		get(t, c, "GET", g.url("web"), nil)
	}
	if n := counter(ejections) - ej0; n != 1 {
		t.Fatalf("expressgateway_backend_ejections_total = %d, want 1", n)
	}
	bs[0].status.Store(200)
	for b0.Ejected() {
		st, be, _ := get(t, c, "GET", g.url("web"), nil)
		// a may serve only if its ejection ended during this request.
		if st != 200 || be == "a" && b0.Ejected() {
			t.Fatalf("while ejected: %d from %q", st, be)
		}
	}
	got := shares(t, c, g.url("web"), 300, nil)
	if got["a"] < 0.2 {
		t.Fatalf("returned backend share %.3f, want ≈ 1/3", got["a"])
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// A connect failure proves the backend never saw the request: any method
// is retried on another backend (POST included), and counted.
func TestLB_Retry_ConnectRefusedAnyMethod(t *testing.T) {
	live := startLB(t, "live")
	// A budget large enough for every retry here (TestLB_Retry_Budget
	// covers the budget).
	pool := fmt.Sprintf("[[pools]]\nname = \"rc\"\n[pools.retry]\nmin_retries_per_sec = 1000\n[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n", deadAddr(t), live.addr)
	g := lbGateway(t, pool, "rc", "")
	c := client(t)
	before := counter(`expressgateway_retries_total{pool="rc"}`)
	for _, m := range []string{"POST", "PATCH", "DELETE", "GET"} {
		for range 10 {
			if st, be, _ := get(t, c, m, g.url("web"), nil); st != 200 || be != "live" {
				t.Fatalf("%s: %d from %q, want 200 from live", m, st, be)
			}
		}
	}
	if counter(`expressgateway_retries_total{pool="rc"}`) == before {
		t.Fatal("no retry counted")
	}
}

// A status in retry.on_status is retried for idempotent methods only; a
// POST gets the backend's answer.
func TestLB_Retry_OnStatusIdempotentOnly(t *testing.T) {
	bad, good := startLB(t, "bad"), startLB(t, "good")
	bad.status.Store(503)
	g := lbGateway(t, lbPool("rs", []*lbBackend{bad, good}, nil, "[pools.retry]\non_status = [503]\nmin_retries_per_sec = 1000"), "rs", "")
	c := client(t)
	for range 20 {
		if st, be, _ := get(t, c, "GET", g.url("web"), nil); st != 200 || be != "good" {
			t.Fatalf("GET: %d from %q (retries %d, budget exhausted %d)", st, be, counter(`expressgateway_retries_total{pool="rs"}`), counter(`expressgateway_retry_budget_exhausted_total{pool="rs"}`))
		}
	}
	saw503 := false
	for range 20 {
		st, be, _ := get(t, c, "POST", g.url("web"), nil)
		if st == 503 && be == "bad" {
			saw503 = true
		} else if st != 200 {
			t.Fatalf("POST: %d from %q", st, be)
		}
	}
	if !saw503 {
		t.Fatal("a POST answered 503 was retried")
	}
}

// A request whose body already streamed to a backend is never retried,
// whatever its method: the backend that cut it is the only one to see it.
func TestLB_Retry_NeverAfterBodyStreamed(t *testing.T) {
	var cutter, other atomic.Int64
	cut := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cutter.Add(1)
		io.Copy(io.Discard, r.Body)
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	ok := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	pool := fmt.Sprintf("[[pools]]\nname = \"rb\"\n[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n", cut, ok)
	g := lbGateway(t, pool, "rb", "")
	c := client(t)
	var n502, n200 int64
	for i := range 20 {
		method := "POST"
		if i%2 == 1 {
			method = "PUT" // idempotent, but its body streamed: no retry either
		}
		req, _ := http.NewRequest(method, g.url("web"), strings.NewReader(strings.Repeat("x", 100_000)))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case 502:
			n502++
		case 200:
			n200++
		default:
			t.Fatalf("%s: status %d", method, res.StatusCode)
		}
	}
	if cutter.Load() == 0 || n502 != cutter.Load() || n200 != other.Load() {
		t.Fatalf("cut %d (502s %d), other backend saw %d (200s %d): a streamed body was retried", cutter.Load(), n502, other.Load(), n200)
	}
}

// The retry budget caps retries at budget_percent of requests plus
// min_retries_per_sec: with every backend failing, 200 GETs with two
// retries each get at most ~10% extra tries, and the exhaustion counts.
func TestLB_Retry_Budget(t *testing.T) {
	bs := threeBackends(t)
	for _, b := range bs {
		b.status.Store(503)
	}
	g := lbGateway(t, lbPool("rbud", bs, nil, "[pools.retry]\nattempts = 2\nbudget_percent = 10\nmin_retries_per_sec = 1"), "rbud", "")
	c := client(t)
	// Metrics are process-wide: count from here (-count=N reruns).
	retries0, exhausted0 := counter(`expressgateway_retries_total{pool="rbud"}`), counter(`expressgateway_retry_budget_exhausted_total{pool="rbud"}`)
	start := time.Now()
	const n = 200
	for range n {
		if st, _, _ := get(t, c, "GET", g.url("web"), nil); st != 503 {
			t.Fatalf("status %d, want the backends' 503", st)
		}
	}
	secs := time.Since(start).Seconds()
	retries := counter(`expressgateway_retries_total{pool="rbud"}`) - retries0
	exhausted := counter(`expressgateway_retry_budget_exhausted_total{pool="rbud"}`) - exhausted0
	// The budget is 10% of the pool's tries (retries included), so at most
	// n/9 retries for n requests, plus one per second begun.
	limit := uint64(math.Ceil(n/9.0) + math.Ceil(secs) + 1)
	var served int64
	for _, b := range bs {
		served += b.served.Load()
	}
	t.Logf("%d requests: %d retries (limit %d), %d tries served, %d exhausted", n, retries, limit, served, exhausted)
	if retries > limit || uint64(served) != n+retries {
		t.Fatalf("retries %d (limit %d), tries %d", retries, limit, served)
	}
	if exhausted == 0 {
		t.Fatal("expressgateway_retry_budget_exhausted_total not counted")
	}
}

// A try slower than per_try_timeout_ms is abandoned and retried on
// another backend.
func TestLB_Retry_PerTryTimeout(t *testing.T) {
	slow, fast := startLB(t, "slow"), startLB(t, "fast")
	slow.delay.Store(int64(2 * time.Second))
	g := lbGateway(t, lbPool("pt", []*lbBackend{slow, fast}, nil, "[pools.retry]\nper_try_timeout_ms = 150"), "pt", "")
	c := client(t)
	before := counter(`expressgateway_retries_total{pool="pt"}`)
	for range 6 {
		if st, be, _ := get(t, c, "GET", g.url("web"), nil); st != 200 || be != "fast" {
			t.Fatalf("GET: %d from %q", st, be)
		}
	}
	if counter(`expressgateway_retries_total{pool="pt"}`) == before {
		t.Fatal("no try timed out and retried")
	}
}

// Past max_requests the request gets 503 and circuit_open_total counts.
func TestLB_CircuitBreaker_503(t *testing.T) {
	release := make(chan struct{})
	var inside sync.WaitGroup
	inside.Add(1)
	var once sync.Once
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(inside.Done)
		<-release
	}))
	pool := fmt.Sprintf("[[pools]]\nname = \"cb\"\n[pools.circuit_breaker]\nmax_requests = 1\n[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n", addr)
	g := lbGateway(t, pool, "cb", "")
	c := client(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		if st, _, _ := get(t, c, "GET", g.url("web"), nil); st != 200 {
			t.Errorf("first request: %d", st)
		}
	})
	inside.Wait()
	name := `expressgateway_circuit_open_total{pool="cb",backend="` + addr + `"}`
	before := counter(name)
	for range 5 {
		if st, _, h := get(t, c, "GET", g.url("web"), nil); st != 503 || h.Get("retry-after") == "" {
			t.Fatalf("over max_requests: %d (retry-after %q), want 503", st, h.Get("retry-after"))
		}
	}
	if got := counter(name) - before; got != 5 {
		t.Fatalf("expressgateway_circuit_open_total rose by %d, want 5", got)
	}
	close(release)
	wg.Wait()
	if st, _, _ := get(t, c, "GET", g.url("web"), nil); st != 200 {
		t.Fatalf("after the breaker closed: %d", st)
	}
}

// The headline: one of three backends dies under sustained load
// (4 clients, 30000 requests at most, 30 s at most). No idempotent request
// fails: tries cut by the death and connects refused are retried, and
// consecutive connect failures eject it within a few tries (the retry
// budget alone would not cover a third of the traffic); once the check
// marks it down (after fall failed probes), no try reaches it; brought
// back, it rejoins through slow start (a small share at first, a full
// share once the ramp is over).
func TestLB_KillOneOfThree_UnderLoad(t *testing.T) {
	bs := threeBackends(t)
	const slowStart = 1500 * time.Millisecond
	g := lbGateway(t, lbPool("kill", bs, nil, fmt.Sprintf(`algorithm = "round_robin"
slow_start_ms = %d
[pools.health_check]
type = "http"
path = "/healthz"
interval_ms = 50
timeout_ms = 40
rise = 2
fall = 3
[pools.outlier]
consecutive_connect_failures = 3
base_ejection_ms = 200`, slowStart.Milliseconds())), "kill", "")
	p := g.pools["kill"]
	victim := p.Backends()[2]
	lbWait(t, "all healthy", func() bool { return allHealthy(p) })

	var (
		total, failures atomic.Int64
		phase           atomic.Int32 // 0 warm, 1 killed, 2 down, 3 revived, 4 ramping, 5 ramped
		mu              sync.Mutex
		byPhase         [6]map[string]int
	)
	for i := range byPhase {
		byPhase[i] = map[string]int{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := client(t)
			for ctx.Err() == nil && total.Add(1) <= 30000 {
				req, _ := http.NewRequestWithContext(ctx, "GET", g.url("web"), nil)
				ph := phase.Load()
				res, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
						t.Errorf("phase %d: %v", ph, err)
					}
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("phase %d: status %d", ph, res.StatusCode)
				}
				mu.Lock()
				byPhase[ph][res.Header.Get("x-backend")]++
				mu.Unlock()
			}
		})
	}
	waitN := func(ph int32, n int) {
		lbWait(t, fmt.Sprintf("%d requests in phase %d", n, ph), func() bool {
			mu.Lock()
			defer mu.Unlock()
			s := 0
			for _, v := range byPhase[ph] {
				s += v
			}
			return s >= n || ctx.Err() != nil || total.Load() > 30000
		})
	}
	waitN(0, 300)
	retriesBefore := counter(`expressgateway_retries_total{pool="kill"}`)
	bs[2].kill()
	phase.Store(1)
	lbWait(t, "victim marked down", victim.Down)
	retriesKilled := counter(`expressgateway_retries_total{pool="kill"}`) - retriesBefore
	phase.Store(2)
	downRetries := counter(`expressgateway_retries_total{pool="kill"}`)
	waitN(2, 300)
	// In flight when the mark landed: at most one try per client.
	if d := counter(`expressgateway_retries_total{pool="kill"}`) - downRetries; d > 4 {
		t.Errorf("%d retries after the victim was marked down: tries still reach it", d)
	}
	mu.Lock()
	servedDown := byPhase[2]["c"]
	mu.Unlock()
	bs[2].revive(t)
	lbWait(t, "victim up", victim.Healthy)
	phase.Store(3)
	waitN(3, 200)
	phase.Store(4)
	time.Sleep(slowStart) // the ramp
	phase.Store(5)
	waitN(5, 600)
	cancel()
	wg.Wait()

	t.Logf("requests %d, retries while dying %d, by phase %v", total.Load(), retriesKilled, byPhase)
	if failures.Load() != 0 {
		t.Fatalf("%d idempotent requests failed", failures.Load())
	}
	share := func(ph int) float64 {
		s := 0
		for _, v := range byPhase[ph] {
			s += v
		}
		return float64(byPhase[ph]["c"]) / float64(s)
	}
	if servedDown != 0 {
		t.Errorf("dead backend served %d requests while down", servedDown)
	}
	// Slow start begins at 10% of the weight: ≈ 5% of traffic, rising.
	if early, late := share(3), share(5); early > 0.2 || late < 0.25 {
		t.Errorf("revived backend share %.3f in its first 200 requests (want < 0.2: slow start), %.3f after the ramp (want ≈ 0.33)", early, late)
	}
}

// An L4 tcp listener uses a named pool with least_conn: held connections
// spread exactly by weight (each new one goes to the least loaded), and
// the connection counts return to zero when they close.
func TestLB_L4_TCP_LeastConn(t *testing.T) {
	type echo struct {
		addr  string
		conns atomic.Int64
	}
	var es []*echo
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e := &echo{addr: ln.Addr().String()}
		es = append(es, e)
		var wg sync.WaitGroup
		wg.Go(func() {
			var cw sync.WaitGroup
			defer cw.Wait()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				e.conns.Add(1)
				cw.Go(func() { io.Copy(c, c); c.Close() })
			}
		})
		t.Cleanup(func() { ln.Close(); wg.Wait() })
	}
	cfg := fmt.Sprintf(`[[listeners]]
name = "l4"
address = "127.0.0.1:0"
protocol = "tcp"
pool = "tl"
[[pools]]
name = "tl"
algorithm = "least_conn"
[[pools.backends]]
address = %q
weight = 1
[[pools.backends]]
address = %q
weight = 3
`, es[0].addr, es[1].addr)
	g := startGateway(t, cfg)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 20 {
		c, err := net.Dial("tcp", g.Addr("l4").String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// A round trip proves the relay has picked and connected.
		msg := []byte("ping" + strconv.Itoa(i))
		c.Write(msg)
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := es[0].conns.Load(), es[1].conns.Load(); a != 5 || b != 15 {
		t.Fatalf("20 held connections split %d:%d, want 5:15 (weights 1:3)", a, b)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	lbWait(t, "connection counts back to zero", func() bool {
		for _, b := range g.pools["tl"].Backends() {
			if b.Conns() != 0 {
				return false
			}
		}
		return true
	})
}
