package health

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup builds a pool over addrs and its checker (started), stopped at
// the end of the test.
func setup(t *testing.T, addrs []string, mod func(*conf.Pool)) (*route.Pool, *Checker) {
	t.Helper()
	cfg := conf.Pool{Name: "hp"}
	for _, a := range addrs {
		cfg.Backends = append(cfg.Backends, conf.Backend{Address: a, Protocol: "h1"})
	}
	mod(&cfg)
	if err := cfg.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	p, err := route.NewPool(cfg, route.Options{Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(p, cfg, zerolog.New(zerolog.NewTestWriter(t)), Options{Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	return p, c
}

// eventually polls cond every 5 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastChecks is a health_check section that decides within ~200 ms. The
// timeout (at most the interval) is not shorter: a check that times out
// on a loaded machine (the race detector) would flap a healthy backend.
func fastChecks(typ string) *conf.HealthCheck {
	return &conf.HealthCheck{Type: typ, IntervalMs: 100, TimeoutMs: 100, Rise: 2, Fall: 2}
}

func backendAddrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("10.0.0.%d:80", i+1)
	}
	return a
}

func testLogger(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

func eventuallyTick() { time.Sleep(10 * time.Millisecond) }
