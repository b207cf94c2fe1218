package route

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testWeights are the weights of the distribution tests: shares 10%..40%.
var testWeights = []int{1, 2, 3, 4}

// newTestPool builds a pool of len(weights) backends 10.0.0.i:80 with algo,
// after mod edits the config.
func newTestPool(t testing.TB, algo string, weights []int, mod func(*conf.Pool)) *Pool {
	t.Helper()
	cfg := conf.Pool{Name: "t", Algorithm: algo}
	for i, w := range weights {
		cfg.Backends = append(cfg.Backends, conf.Backend{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Protocol: "h1", Weight: w})
	}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(cfg, Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ipKey returns the Key of client i (distinct IPv4 addresses).
func ipKey(i int) Key {
	return Key{Src: netip.AddrFrom4([4]byte{192, byte(i >> 16), byte(i >> 8), byte(i)})}
}

const picks = 100_000

// idleShares picks n times, ending each attempt at once, and returns each
// backend's share of the picks.
func idleShares(t testing.TB, p *Pool, n int, key func(int) Key) []float64 {
	t.Helper()
	counts := make([]int, len(p.backends))
	for i := range n {
		b, err := p.Pick(key(i))
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		b.Begin().End(Outcome{Status: 200, Latency: 1})
		counts[b.index]++
	}
	return toShares(counts, n)
}

// loadedShares picks n times keeping the last inFlight attempts open (each
// request lasts inFlight picks), the load the least-* pickers balance.
func loadedShares(t testing.TB, p *Pool, n, inFlight int, latency func(*Backend) int64) []float64 {
	t.Helper()
	counts := make([]int, len(p.backends))
	fifo := make([]*Attempt, 0, inFlight+1)
	for i := range n {
		b, err := p.Pick(ipKey(i))
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		counts[b.index]++
		b.ConnOpen()
		fifo = append(fifo, b.Begin())
		if len(fifo) > inFlight {
			a := fifo[0]
			fifo = fifo[1:]
			a.End(Outcome{Status: 200, Latency: durationOf(latency, a.b)})
			a.b.ConnClosed()
		}
	}
	for _, a := range fifo {
		a.End(Outcome{Status: 200, Latency: 1})
		a.b.ConnClosed()
	}
	return toShares(counts, n)
}

func durationOf(f func(*Backend) int64, b *Backend) (d time.Duration) {
	if f == nil {
		return 1
	}
	return time.Duration(f(b))
}

func toShares(counts []int, n int) []float64 {
	s := make([]float64, len(counts))
	for i, c := range counts {
		s[i] = float64(c) / float64(n)
	}
	return s
}

// wantShares checks every share is within tol (absolute) of its weight's
// share.
func wantShares(t testing.TB, got []float64, weights []int, tol float64) {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, w := range weights {
		want := float64(w) / float64(total)
		if math.Abs(got[i]-want) > tol {
			t.Errorf("backend %d (weight %d): share %.4f, want %.4f ± %.4f (all: %.4f)", i, w, got[i], want, tol, got)
		}
	}
	t.Logf("shares %.4f for weights %v", got, weights)
}

type testHead = frames.Head

// newHead builds a GET head for path with one field (if name is set).
func newHead(path, name, value string) *frames.Head {
	h := &frames.Head{Method: "GET", Scheme: "http", Authority: "x", Path: path}
	if name != "" {
		h.Fields.Add(name, value)
	}
	return h
}
