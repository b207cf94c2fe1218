// Command lb measures load balancing two ways, on loopback only, every run
// bounded in count and time:
//
//  1. selection cost: one Pool.Pick per algorithm on a pool of 10
//     backends of weights 1..4 (the same setup as BenchmarkPick in
//     stages/route, which `go test -bench Pick ./stages/route` runs with
//     allocation counts);
//
//  2. throughput: the gateway in process, one pool per algorithm
//     (round_robin, least_request, p2c by default) over three net/http
//     backends of uneven speed (1 ms, 5 ms, 20 ms per request), loaded by
//     -c keep-alive clients for -n requests or -d, whichever ends first;
//     it prints requests/s, latency p50/p99 and each backend's share.
//
//     go run ./bench/lb -c 32 -n 20000 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/pipeline"
	"github.com/expressgateway/expressgateway/stages/route"
)

func main() {
	conns := flag.Int("c", 32, "concurrent keep-alive clients")
	maxReq := flag.Int("n", 20_000, "request cap per algorithm")
	dur := flag.Duration("d", 10*time.Second, "time cap per algorithm")
	delays := flag.String("delays", "1ms,5ms,20ms", "per-backend service times")
	algos := flag.String("algos", "round_robin,least_request,p2c", "algorithms loaded through the gateway")
	skipPick := flag.Bool("nopick", false, "skip the selection-cost table")
	flag.Parse()
	if !*skipPick {
		pickTable()
	}
	if err := throughput(strings.Split(*algos, ","), *delays, *conns, *maxReq, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "lb:", err)
		os.Exit(1)
	}
}

// pickTable prints the cost of one selection per algorithm.
func pickTable() {
	fmt.Println("selection cost (10 backends, weights 1..4, 1024 clients)")
	fmt.Printf("%-14s %10s %10s\n", "algorithm", "ns/pick", "allocs")
	weights := []int{1, 2, 3, 4, 1, 2, 3, 4, 1, 2}
	for _, algo := range conf.Algorithms {
		cfg := conf.Pool{Name: "bench", Algorithm: algo, HashKey: "header:x-user"}
		for i, w := range weights {
			cfg.Backends = append(cfg.Backends, conf.Backend{Address: "10.0.0." + strconv.Itoa(i+1) + ":80", Protocol: "h1", Weight: w})
		}
		if err := cfg.Prepare("pools[0]"); err != nil {
			panic(err)
		}
		p, err := route.NewPool(cfg, route.Options{Metrics: metrics.NewSet()})
		if err != nil {
			panic(err)
		}
		keys := make([]route.Key, 1024)
		for i := range keys {
			h := &frames.Head{Method: "GET", Path: "/"}
			h.Fields.Add("x-user", "u"+strconv.Itoa(i))
			if algo == "sticky" && i%2 == 0 {
				// Half the clients already hold a cookie: take it from a
				// first response.
				b, _ := p.Pick(route.Key{Head: h})
				if c := p.StickyCookie(route.Key{Head: h}, b); c != "" {
					name, val, _ := strings.Cut(strings.SplitN(c, ";", 2)[0], "=")
					h.Fields.Add("cookie", name+"="+val)
				}
			}
			keys[i] = route.Key{Src: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Head: h}
		}
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.Pick(keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		fmt.Printf("%-14s %10.1f %10d\n", algo, float64(r.T.Nanoseconds())/float64(r.N), r.AllocsPerOp())
	}
	fmt.Println()
}

// throughput loads the gateway once per algorithm.
func throughput(algos []string, delays string, conns, maxReq int, dur time.Duration) error {
	var ds []time.Duration
	for _, s := range strings.Split(delays, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-delays: %w", err)
		}
		ds = append(ds, d)
	}
	var backends []*slowBackend
	for i, d := range ds {
		b, err := startBackend(i, d)
		if err != nil {
			return err
		}
		defer b.close()
		backends = append(backends, b)
	}
	fmt.Printf("throughput through the gateway: %d clients, ≤ %d requests or %s per algorithm, backends %s\n", conns, maxReq, dur, delays)
	fmt.Printf("%-14s %10s %9s %9s %9s  %s\n", "algorithm", "requests", "req/s", "p50", "p99", "share per backend")
	for _, algo := range algos {
		res, err := loadOne(strings.TrimSpace(algo), backends, conns, maxReq, dur)
		if err != nil {
			return err
		}
		fmt.Printf("%-14s %10d %9.0f %9s %9s  %s\n", algo, res.n, res.rps, res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond), res.shares)
	}
	return nil
}

type result struct {
	n        int
	rps      float64
	p50, p99 time.Duration
	shares   string
}

func loadOne(algo string, backends []*slowBackend, conns, maxReq int, dur time.Duration) (result, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "[[listeners]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\nprotocol = \"h1\"\npool = \"bench\"\n")
	fmt.Fprintf(&sb, "[observability]\naccess_log = false\n")
	fmt.Fprintf(&sb, "[[pools]]\nname = \"bench\"\nalgorithm = %q\n", algo)
	for _, b := range backends {
		fmt.Fprintf(&sb, "[[pools.backends]]\naddress = %q\nprotocol = \"h1\"\n", b.addr)
		b.served.Store(0)
	}
	dir, err := os.MkdirTemp("", "eglb")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "lb.toml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		return result{}, err
	}
	cfg, err := conf.Load(path)
	if err != nil {
		return result{}, err
	}
	g, err := pipeline.New(cfg, zerolog.Nop())
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	if err := g.Start(context.Background()); err != nil {
		return result{}, err
	}
	defer g.Drain(2 * time.Second)
	url := "http://" + g.Addr("web").String() + "/"

	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		issued atomic.Int64
		mu     sync.Mutex
		lats   = make([]time.Duration, 0, maxReq)
		errs   atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, maxReq/conns+1)
			for ctx.Err() == nil && issued.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				res, err := client.Get(url)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	if e := errs.Load(); e > 0 {
		return result{}, fmt.Errorf("%s: %d requests failed", algo, e)
	}
	slices.Sort(lats)
	r := result{n: len(lats), rps: float64(len(lats)) / el.Seconds()}
	if len(lats) > 0 {
		r.p50 = lats[len(lats)*50/100]
		r.p99 = lats[len(lats)*99/100]
	}
	var parts []string
	for _, b := range backends {
		parts = append(parts, fmt.Sprintf("%s:%.0f%%", b.delay, 100*float64(b.served.Load())/float64(max(1, len(lats)))))
	}
	r.shares = strings.Join(parts, " ")
	return r, nil
}

// slowBackend is a net/http backend on loopback answering after delay.
type slowBackend struct {
	addr   string
	delay  time.Duration
	served atomic.Int64
	srv    *http.Server
	done   chan struct{}
}

func startBackend(i int, d time.Duration) (*slowBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &slowBackend{addr: ln.Addr().String(), delay: d, done: make(chan struct{})}
	body := []byte("backend " + strconv.Itoa(i) + "\n")
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		b.served.Add(1)
		w.Write(body)
	})}
	go func() { b.srv.Serve(ln); close(b.done) }()
	return b, nil
}

func (b *slowBackend) close() {
	b.srv.Close()
	<-b.done
}
