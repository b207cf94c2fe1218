package health

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

func outcomes(b *route.Backend, n int, o route.Outcome) {
	for range n {
		b.Begin().End(o)
	}
}

// Consecutive 5xx eject a backend; it returns after base × ejections,
// each ejection longer (capped), forgiven with time in the pool; at most
// max_ejected_percent of the pool is out; a success resets the count.
func TestOutlier_EjectReturnGrowDecay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base = 100 * time.Millisecond
		p, c := setup(t, backendAddrs(3), func(cfg *conf.Pool) {
			cfg.Outlier = &conf.Outlier{Consecutive5xx: 3, BaseEjectionMs: 100, MaxEjectionMs: 350, MaxEjectedPercent: 50, IntervalMs: 10}
		})
		b0, b1 := p.Backends()[0], p.Backends()[1]
		s503 := route.Outcome{Status: 503, Latency: time.Millisecond}
		outcomes(b0, 2, s503)
		outcomes(b0, 1, route.Outcome{Status: 200, Latency: time.Millisecond})
		outcomes(b0, 2, s503)
		if b0.Ejected() {
			t.Fatal("ejected although a success broke the run")
		}
		outcomes(b0, 1, s503)
		if !b0.Ejected() || c.bs[0].m.ejections.Get() != 1 || c.bs[0].m.up.Get() != 0 {
			t.Fatal("3 consecutive 503 did not eject")
		}
		for range 100 {
			if b, _ := p.Pick(route.Key{}); b == b0 {
				t.Fatal("picked an ejected backend")
			}
		}
		outcomes(b1, 3, route.Outcome{Status: 500})
		if b1.Ejected() {
			t.Fatal("max_ejected_percent 50 of 3 allows one ejection, two happened")
		}

		// Ejection times grow: 100, 200, 300, then the 350 ms cap.
		for i, want := range []time.Duration{base, 2 * base, 3 * base, 350 * time.Millisecond} {
			if i > 0 {
				outcomes(b0, 3, s503)
			}
			if !b0.Ejected() {
				t.Fatalf("ejection %d did not happen", i+1)
			}
			time.Sleep(want - 15*time.Millisecond)
			synctest.Wait()
			if !b0.Ejected() {
				t.Fatalf("ejection %d: back before %v", i+1, want)
			}
			time.Sleep(30 * time.Millisecond)
			synctest.Wait()
			if b0.Ejected() {
				t.Fatalf("ejection %d: still out after %v", i+1, want+15*time.Millisecond)
			}
		}
		if c.bs[0].m.up.Get() != 1 {
			t.Fatal("backend_up not restored")
		}
		// Four base periods in the pool forgive four ejections: next is 1×.
		time.Sleep(4 * base)
		outcomes(b0, 3, s503)
		time.Sleep(base - 15*time.Millisecond)
		synctest.Wait()
		if !b0.Ejected() {
			t.Fatal("back too early after decay")
		}
		time.Sleep(30 * time.Millisecond)
		synctest.Wait()
		if b0.Ejected() {
			t.Fatal("decayed ejection lasted more than one base period")
		}
	})
}

// Connect failures and gateway errors have their own thresholds; a
// client's cancellation says nothing about the backend.
func TestOutlier_ConnectAndGatewayErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := setup(t, backendAddrs(4), func(cfg *conf.Pool) {
			cfg.Outlier = &conf.Outlier{Consecutive5xx: 100, ConsecutiveGatewayErrors: 3, ConsecutiveConnectFailures: 2, MaxEjectedPercent: 100, IntervalMs: 10}
		})
		bs := p.Backends()
		outcomes(bs[0], 2, route.Outcome{Err: &route.DialError{Err: errors.New("refused")}})
		outcomes(bs[1], 3, route.Outcome{Err: errors.New("reset")})
		outcomes(bs[2], 3, route.Outcome{Status: 504})
		outcomes(bs[3], 10, route.Outcome{Err: context.Canceled})
		if !bs[0].Ejected() || !bs[1].Ejected() || !bs[2].Ejected() || bs[3].Ejected() {
			t.Fatalf("ejected: %v %v %v %v, want true true true false", bs[0].Ejected(), bs[1].Ejected(), bs[2].Ejected(), bs[3].Ejected())
		}
		// Three of four out: below the 50% panic threshold, all get traffic.
		if !p.Panicking() {
			t.Fatal("pool should be in panic mode")
		}
	})
}
