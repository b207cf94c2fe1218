package pipeline

import (
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
)

// Status is the live state the admin listener's /status page shows:
// cumulative counts, which the page turns into rates between two polls.
type Status struct {
	ReloadOK          bool             `json:"reload_ok"`
	LastReloadSeconds int64            `json:"last_reload_success_seconds"`
	Listeners         []ListenerStatus `json:"listeners"`
	Pools             []PoolStatus     `json:"pools"`
	GuardHits         map[string]int64 `json:"guard_hits"`
}

// ListenerStatus is one listener's row.
type ListenerStatus struct {
	Name              string `json:"name"`
	Protocol          string `json:"protocol"`
	Address           string `json:"address"`
	ConnectionsActive int64  `json:"connections_active"`
	Requests          int64  `json:"requests"`
	Errors5xx         int64  `json:"errors_5xx"`
	// CertNotAfter is the serving certificate's expiry (Unix seconds); 0
	// without TLS.
	CertNotAfter int64 `json:"cert_not_after_seconds,omitempty"`
}

// PoolStatus is one pool and its backends.
type PoolStatus struct {
	Name     string          `json:"name"`
	Healthy  int             `json:"healthy"`
	Panic    bool            `json:"panic_mode"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend's row.
type BackendStatus struct {
	Address        string  `json:"address"`
	Protocol       string  `json:"protocol"`
	Healthy        bool    `json:"healthy"`
	Weight         int     `json:"weight"`
	ActiveRequests int64   `json:"active_requests"`
	Connections    int64   `json:"connections"`
	BreakerOpen    bool    `json:"breaker_open"`
	Requests       int64   `json:"requests"`
	Errors5xx      int64   `json:"errors_5xx"`
	LatencySeconds float64 `json:"latency_ewma_seconds"`
}

// Status reports g's state now, from the same atomics and counters the
// metrics read.
func (g *Gateway) Status() Status {
	st := Status{ReloadOK: reloadLastGood.Get() == 1, LastReloadSeconds: int64(reloadLastOK.Get()), GuardHits: map[string]int64{}}
	v := g.view.Load()
	if v == nil {
		return st
	}
	type key struct{ listener, backend string }
	reqs, errs := map[key]int64{}, map[key]int64{}
	names := map[string]bool{}
	for _, l := range v.listeners {
		names[l.cfg.Name] = true
	}
	seriesCache.Range(func(k, s any) bool {
		rk := k.(reqKey)
		if !names[rk.listener] {
			return true
		}
		n := int64(s.(*reqSeries).count.Get())
		for _, kk := range []key{{rk.listener, ""}, {"", rk.backend}} {
			reqs[kk] += n
			if rk.class == 5 {
				errs[kk] += n
			}
		}
		return true
	})
	for _, l := range v.listeners {
		ls := ListenerStatus{Name: l.cfg.Name, Protocol: l.cfg.Protocol, Address: l.cfg.Address,
			ConnectionsActive: l.conns.Load(), Requests: reqs[key{l.cfg.Name, ""}], Errors5xx: errs[key{l.cfg.Name, ""}]}
		if leaf := certLeaf(l); leaf != nil {
			ls.CertNotAfter = leaf.NotAfter.Unix()
		}
		st.Listeners = append(st.Listeners, ls)
	}
	seen := map[string]bool{}
	for _, p := range v.pools {
		if p == nil || seen[p.Name()] {
			continue
		}
		seen[p.Name()] = true
		ps := PoolStatus{Name: p.Name(), Panic: p.Panicking()}
		for _, b := range p.Backends() {
			if b.Healthy() {
				ps.Healthy++
			}
			ps.Backends = append(ps.Backends, BackendStatus{
				Address: b.Address, Protocol: b.Protocol, Healthy: b.Healthy(), Weight: b.Weight,
				ActiveRequests: b.Active(), Connections: b.Conns(), BreakerOpen: b.Full(),
				Requests: reqs[key{"", b.Address}], Errors5xx: errs[key{"", b.Address}],
				LatencySeconds: b.Latency() / 1e9,
			})
		}
		st.Pools = append(st.Pools, ps)
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Name < st.Pools[j].Name })
	const fam = `expressgateway_guard_hits_total{rule="`
	for _, name := range metrics.ListMetricNames() {
		if rule, ok := strings.CutPrefix(name, fam); ok {
			if n := metrics.GetOrCreateCounter(name).Get(); n > 0 {
				st.GuardHits[strings.TrimSuffix(rule, `"}`)] = int64(n)
			}
		}
	}
	return st
}

// Config renders the running config (the last one a reload applied) as
// TOML with secrets redacted: the admin /config endpoint.
func (g *Gateway) Config() ([]byte, error) { return conf.Render(g.running.Load()) }
