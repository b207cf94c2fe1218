package conf

import (
	"strings"
	"testing"
)

func TestPool_Defaults(t *testing.T) {
	p := Pool{Name: "api", Backends: []Backend{{Address: "10.0.0.1:80"}}, HealthCheck: &HealthCheck{Type: "http"}, Outlier: &Outlier{}}
	if err := p.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	b := p.Backends[0]
	switch {
	case p.Algorithm != "round_robin", p.HashKey != "source_ip", *p.PanicThresholdPercent != 50:
		t.Errorf("pool defaults: %+v", p)
	case b.Protocol != "tcp", b.Weight != 1, b.TLSVerifyPeer == nil || !*b.TLSVerifyPeer:
		t.Errorf("backend defaults: %+v", b)
	case p.HealthCheck.Path != "/", p.HealthCheck.Method != "GET", p.HealthCheck.IntervalMs != 5000, p.HealthCheck.TimeoutMs != 2000, p.HealthCheck.Rise != 2, p.HealthCheck.Fall != 3:
		t.Errorf("health defaults: %+v", *p.HealthCheck)
	case p.Outlier.Consecutive5xx != 5, p.Outlier.BaseEjectionMs != 30000, p.Outlier.MaxEjectedPercent != 10:
		t.Errorf("outlier defaults: %+v", *p.Outlier)
	case p.Retry == nil || *p.Retry.Attempts != 2 || p.Retry.BudgetPercent != 20 || len(p.Retry.OnStatus) != 2 || *p.Retry.MaxReplayBodyBytes != 64<<10:
		t.Errorf("retry defaults: %+v", p.Retry)
	}
}

func TestPool_ValidateReportsEveryProblemWithItsKey(t *testing.T) {
	p := Pool{
		Name:      "bad name",
		Algorithm: "fastest",
		HashKey:   "header:",
		Backends: []Backend{
			{Address: "nohost", Weight: 2000, Protocol: "sctp"},
			{Address: "10.0.0.1:80"},
			{Address: "10.0.0.1:80"},
			{Address: "10.0.0.2:0", Protocol: "udp", TLS: true},
		},
		HealthCheck: &HealthCheck{Type: "icmp", IntervalMs: 5, TimeoutMs: 10},
		Retry:       &Retry{OnStatus: []int{404}, MaxReplayBodyBytes: new(int64(-1))},
		Circuit:     &Circuit{MaxRequests: -1},
		Sticky:      &Sticky{Fallback: "maglev"},
	}
	err := p.Prepare("pools[0]")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`pools[0].name: pool name "bad name"`,
		`pools[0].algorithm: unknown algorithm "fastest" (want one of round_robin,`,
		`pools[0].hash_key: unknown hash key "header:"`,
		`pools[0].backends[0].address: want host:port`,
		`pools[0].backends[0].weight: must be 1..1000, got 2000`,
		`pools[0].backends[0].protocol: unknown backend protocol "sctp"`,
		`pools[0].backends[2].address: duplicate of backends[1]`,
		`pools[0].backends[3].address: port must be 1..65535`,
		`pools[0].backends[3].tls: a udp backend cannot use TLS`,
		`pools[0].health_check.type: unknown health check type "icmp"`,
		`pools[0].health_check.interval_ms: must be ≥ 10`,
		`pools[0].health_check.timeout_ms: must be in 1..interval_ms`,
		`pools[0].retry.on_status[0]: must be a 5xx status`,
		`pools[0].retry.max_replay_body_bytes: must be 0..16777216, got -1`,
		`pools[0].circuit_breaker.max_requests: must be ≥ 0`,
		`pools[0].sticky.fallback: invalid fallback "maglev"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestPool_ValidHashKeys(t *testing.T) {
	for _, hk := range []string{"source_ip", "path", "header:X-User", "cookie:sid"} {
		p := Pool{Name: "h", Algorithm: "maglev", HashKey: hk, Backends: []Backend{{Address: "[::1]:8080", Protocol: "h2", Weight: 3}}}
		if err := p.Prepare("pools[0]"); err != nil {
			t.Errorf("%s: %v", hk, err)
		}
	}
}
