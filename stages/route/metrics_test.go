package route

import (
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// WriteMetrics reports what the pick path's atomics say now: usable
// backends, requests in flight, open connections and breakers, each
// family once with its metadata, and a pool name given twice once.
func TestWriteMetrics_ReportsPoolState(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{1, 3}, func(c *conf.Pool) { c.Circuit = &conf.Circuit{MaxRequests: 1} })
	b0, b1 := p.backends[0], p.backends[1]
	p.SetDown(b1, true)
	a := b0.Begin()
	b0.ConnOpen()
	var sb strings.Builder
	WriteMetrics(&sb, []*Pool{p, newTestPool(t, "random", []int{1}, nil)})
	out := sb.String()
	for _, want := range []string{
		"# TYPE expressgateway_pool_backends gauge\n",
		`expressgateway_pool_backends{pool="t"} 2` + "\n",
		`expressgateway_pool_healthy_backends{pool="t"} 1` + "\n",
		`expressgateway_backend_weight{pool="t",backend="10.0.0.2:80"} 3` + "\n",
		`expressgateway_backend_active_requests{pool="t",backend="10.0.0.1:80"} 1` + "\n",
		`expressgateway_upstream_connections{pool="t",backend="10.0.0.1:80"} 1` + "\n",
		`expressgateway_circuit_breaker_open{pool="t",backend="10.0.0.1:80"} 1` + "\n",
		`expressgateway_circuit_breaker_open{pool="t",backend="10.0.0.2:80"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "# TYPE expressgateway_pool_backends "); n != 1 {
		t.Errorf("%d TYPE lines for one family", n)
	}
	if n := strings.Count(out, `expressgateway_pool_backends{pool="t"}`); n != 1 {
		t.Errorf("pool t written %d times", n)
	}
	a.End(Outcome{Status: 200})
	b0.ConnClosed()
	sb.Reset()
	WriteMetrics(&sb, []*Pool{p})
	if !strings.Contains(sb.String(), `expressgateway_circuit_breaker_open{pool="t",backend="10.0.0.1:80"} 0`) {
		t.Errorf("breaker still open after the request ended:\n%s", sb.String())
	}
}

// A maglev pool's table fingerprint is the same for the same config in
// any process, changes with the backends, and only maglev pools have one.
func TestWriteMetrics_MaglevTableHash(t *testing.T) {
	series := func(pools ...*Pool) string {
		var sb strings.Builder
		WriteMetrics(&sb, pools)
		for line := range strings.Lines(sb.String()) {
			if strings.HasPrefix(line, "expressgateway_pool_maglev_table_hash{") {
				return line
			}
		}
		return ""
	}
	a := series(newTestPool(t, "maglev", []int{1, 1, 1}, nil))
	if a == "" || strings.HasSuffix(a, " 0\n") {
		t.Fatalf("maglev pool: %q", a)
	}
	if b := series(newTestPool(t, "maglev", []int{1, 1, 1}, nil)); b != a {
		t.Errorf("the same config: %q, then %q", a, b)
	}
	if b := series(newTestPool(t, "maglev", []int{1, 1, 2}, nil)); b == a || b == "" {
		t.Errorf("another weight: %q, was %q", b, a)
	}
	if b := series(newTestPool(t, "ring_hash", []int{1, 1, 1}, nil)); b != "" {
		t.Errorf("a ring_hash pool has a maglev fingerprint: %q", b)
	}
}
