package route

import (
	"errors"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
)

// A recovered backend ramps from 10% of its weight to all of it over
// slow_start_ms, for the weighted pickers.
func TestSlowStart_RampsRecoveredBackend(t *testing.T) {
	for _, algo := range []string{"round_robin", "random", "least_request", "p2c"} {
		t.Run(algo, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newTestPool(t, algo, []int{1, 1}, func(c *conf.Pool) { c.SlowStartMs = 10_000 })
				b := p.backends[0]
				p.SetDown(b, true)
				p.SetDown(b, false) // recovered: slow start begins now
				share := func() float64 { return idleShares(t, p, 20_000, ipKey)[0] }
				// weight factor f against 1: share f/(1+f)
				var elapsed time.Duration
				for _, step := range []struct {
					after time.Duration
					f     float64
				}{{0, 0.1}, {5 * time.Second, 0.5}, {10 * time.Second, 1}} {
					time.Sleep(step.after - elapsed)
					elapsed = step.after
					want := step.f / (1 + step.f)
					got := share()
					t.Logf("%s after %v: share %.3f want %.3f", algo, step.after, got, want)
					if math.Abs(got-want) > 0.03 {
						t.Errorf("after %v: share %.3f, want %.3f ± 0.03", step.after, got, want)
					}
				}
				if p.nSlow.Load() != 0 {
					t.Errorf("slow start not cleared after the ramp")
				}
			})
		})
	}
}

// Past max_requests on every healthy backend, Pick answers ErrCircuitOpen
// and counts it; once a request ends the pool serves again.
func TestCircuit_MaxRequests(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{1, 1}, func(c *conf.Pool) { c.Circuit = &conf.Circuit{MaxRequests: 2} })
	var open []*Attempt
	for range 4 {
		b, err := p.Pick(Key{})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, b.Begin())
	}
	if _, err := p.Pick(Key{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("pick past the limit: %v, want ErrCircuitOpen", err)
	}
	if n := p.backends[0].circuitOpen.Get() + p.backends[1].circuitOpen.Get(); n != 2 {
		t.Fatalf("circuit_open_total = %d, want 2", n)
	}
	open[0].End(Outcome{Status: 200})
	open[0].End(Outcome{Status: 200}) // a second End does nothing
	b, err := p.Pick(Key{})
	if err != nil || b != open[0].Backend() {
		t.Fatalf("after one End: %v, %v", b, err)
	}
	for _, a := range open {
		a.End(Outcome{Status: 200})
	}
	if p.backends[0].Active()+p.backends[1].Active() != 0 {
		t.Fatal("active requests leaked")
	}
}

// max_connections and max_pending gate ConnOpen and PendingBegin; for an
// L4 backend open connections also make it full.
func TestCircuit_ConnectionsAndPending(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{1}, func(c *conf.Pool) {
		c.Backends[0].Protocol = "tcp"
		c.Circuit = &conf.Circuit{MaxConnections: 2, MaxPending: 1}
	})
	b := p.backends[0]
	for i, want := range []bool{true, true, false} {
		if got := b.ConnOpen(); got != want {
			t.Fatalf("ConnOpen %d = %v, want %v (max_connections 2)", i, got, want)
		}
	}
	b.ConnClosed() // the refused one is paired too
	if b.Conns() != 2 {
		t.Fatalf("conns = %d after a refused ConnOpen was closed, want 2", b.Conns())
	}
	if _, err := p.Pick(Key{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("L4 backend at max_connections: %v, want ErrCircuitOpen", err)
	}
	b.ConnClosed()
	if _, err := p.Pick(Key{}); err != nil {
		t.Fatal(err)
	}
	if !b.PendingBegin() || b.PendingBegin() {
		t.Fatal("max_pending 1 not enforced")
	}
	b.PendingEnd()
	b.ConnClosed()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("ConnClosed below zero did not panic")
			}
		}()
		b.ConnClosed()
	}()
}

// Below the panic threshold the pool routes to every backend (Envoy);
// with the threshold off it routes to the healthy only, and with none
// healthy it answers ErrNoBackend.
func TestPanicThreshold(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{1, 1, 1, 1}, nil) // default 50%
	p.SetDown(p.backends[0], true)
	p.SetDown(p.backends[1], true)
	if p.Panicking() {
		t.Fatal("50% healthy is not below a 50% threshold")
	}
	p.SetDown(p.backends[2], true) // 25% healthy
	if !p.Panicking() {
		t.Fatal("25% healthy should panic")
	}
	got := idleShares(t, p, 4000, ipKey)
	wantShares(t, got, []int{1, 1, 1, 1}, 0.01)

	zero := 0
	q := newTestPool(t, "round_robin", []int{1, 1, 1, 1}, func(c *conf.Pool) { c.PanicThresholdPercent = &zero })
	for _, b := range q.backends[:3] {
		q.SetDown(b, true)
	}
	got = idleShares(t, q, 1000, ipKey)
	if got[3] != 1 {
		t.Fatalf("threshold off: shares %v, want all on the healthy one", got)
	}
	q.SetDown(q.backends[3], true)
	if _, err := q.Pick(Key{}); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("none healthy: %v, want ErrNoBackend", err)
	}
}

// TryEject respects its limit, counts ejections, and Uneject restores.
func TestEjectMechanics(t *testing.T) {
	p := newTestPool(t, "random", []int{1, 1, 1}, nil)
	if !p.TryEject(p.backends[0], 1) || p.TryEject(p.backends[1], 1) || p.TryEject(p.backends[0], 2) {
		t.Fatal("TryEject limit or double ejection not honoured")
	}
	if p.Ejected() != 1 || p.backends[0].Healthy() {
		t.Fatal("ejection not recorded")
	}
	if !p.Uneject(p.backends[0]) || p.Uneject(p.backends[0]) || p.Ejected() != 0 || p.nUnhealthy.Load() != 0 {
		t.Fatal("uneject not recorded")
	}
}

// A reloaded pool keeps the health and latency of backends it shares with
// the old one and slow-starts the new ones.
func TestNewPool_InheritsFromPrevious(t *testing.T) {
	old := newTestPool(t, "round_robin", []int{1, 1}, func(c *conf.Pool) { c.SlowStartMs = 1000 })
	old.SetDown(old.backends[1], true)
	old.backends[0].observeLatency(time.Now().UnixNano(), 5e6)
	cfg := conf.Pool{Name: "t", SlowStartMs: 1000, Backends: []conf.Backend{
		{Address: "10.0.0.1:80", Protocol: "h1"}, {Address: "10.0.0.2:80", Protocol: "h1"}, {Address: "10.0.0.9:80", Protocol: "h1"},
	}}
	if err := cfg.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(cfg, Options{Previous: old, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if p.backends[0].Latency() != 5e6 || !p.backends[1].Down() || p.backends[2].slowSince.Load() == 0 {
		t.Fatalf("not inherited: latency %v, down %v, slow %v", p.backends[0].Latency(), p.backends[1].Down(), p.backends[2].slowSince.Load())
	}
}

// The health hook fires once per Healthy flip (down, up, ejected,
// returned), after the flip is visible, and not for changes that leave
// Healthy as it was; a removed hook fires no more.
func TestHealthHook_FiresOnHealthyFlipsOnly(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{1, 1}, nil)
	b := p.backends[0]
	var calls []bool // b.Healthy() as the hook saw it
	p.SetHealthHook(func(got *Pool) {
		if got != p {
			t.Errorf("hook got pool %q", got.Name())
		}
		calls = append(calls, b.Healthy())
	})
	steps := []struct {
		name string
		do   func() bool
		want []bool
	}{
		{"down", func() bool { return p.SetDown(b, true) }, []bool{false}},
		{"down again", func() bool { return !p.SetDown(b, true) }, []bool{false}},
		{"ejected while down", func() bool { return p.TryEject(b, 2) }, []bool{false}},
		{"up while ejected", func() bool { return p.SetDown(b, false) }, []bool{false}},
		{"returned", func() bool { return p.Uneject(b) }, []bool{false, true}},
		{"ejected", func() bool { return p.TryEject(b, 2) }, []bool{false, true, false}},
		{"eject refused by limit", func() bool { return !p.TryEject(p.backends[1], 1) }, []bool{false, true, false}},
		{"returned again", func() bool { return p.Uneject(b) }, []bool{false, true, false, true}},
	}
	for _, s := range steps {
		if !s.do() {
			t.Fatalf("%s: state change not as expected", s.name)
		}
		if !slices.Equal(calls, s.want) {
			t.Fatalf("%s: hook saw %v, want %v", s.name, calls, s.want)
		}
	}
	p.SetHealthHook(nil)
	p.SetDown(b, true)
	if len(calls) != 4 {
		t.Fatalf("removed hook still called: %v", calls)
	}
}

// Connections outlive a reload: the reloaded pool's backend counts the
// connections opened under its predecessor (least_conn, max_connections
// and the upstream_connections gauge read it), and their closes count
// down whichever pool's backend they were opened under.
func TestNewPool_SharesConnectionCountAcrossReloads(t *testing.T) {
	old := newTestPool(t, "least_conn", []int{1, 1}, nil)
	old.backends[0].ConnOpen()
	old.backends[0].ConnOpen()
	reload := func(prev *Pool) *Pool {
		cfg := conf.Pool{Name: "t", Algorithm: "least_conn", Backends: []conf.Backend{
			{Address: "10.0.0.1:80", Protocol: "h1"}, {Address: "10.0.0.2:80", Protocol: "h1"},
		}}
		if err := cfg.Prepare("pools[0]"); err != nil {
			t.Fatal(err)
		}
		p, err := NewPool(cfg, Options{Previous: prev, Metrics: metrics.NewSet()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := reload(reload(old)) // two reloads
	if n := p.backends[0].Conns(); n != 2 {
		t.Fatalf("after reloads the backend counts %d connections, want the 2 still open", n)
	}
	if b, err := p.Pick(Key{}); err != nil || b != p.backends[1] {
		t.Fatalf("least_conn picked %v after a reload, want the backend without connections", b)
	}
	p.backends[0].ConnOpen()
	old.backends[0].ConnClosed()
	old.backends[0].ConnClosed()
	if n := p.backends[0].Conns(); n != 1 {
		t.Fatalf("%d connections counted, want 1", n)
	}
}
