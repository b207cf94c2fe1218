package route

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages"
)

// Counters a pool's parts update on their path, resolved once per pool.

func circuitOpenCounter(set *metrics.Set, pool, backend string) *metrics.Counter {
	return set.GetOrCreateCounter(`expressgateway_circuit_open_total{pool="` + stages.LabelValue(pool) + `",backend="` + stages.LabelValue(backend) + `"}`)
}

func retryCounters(set *metrics.Set, pool string) (retries, exhausted *metrics.Counter) {
	l := `{pool="` + stages.LabelValue(pool) + `"}`
	return set.GetOrCreateCounter(`expressgateway_retries_total` + l),
		set.GetOrCreateCounter(`expressgateway_retry_budget_exhausted_total` + l)
}

// WriteMetrics writes the state of pools as gauges read at scrape time
// from the atomics the pick path keeps, so nothing is counted per request
// and a pool a reload replaced is never reported: backends per pool and
// how many are usable, panic mode, a maglev pool's table fingerprint, and
// per backend its weight, requests in flight, open and pending upstream
// connections and whether a circuit breaker is open. A pool name seen twice is written once (the first).
func WriteMetrics(w io.Writer, pools []*Pool) {
	seen := make(map[string]bool, len(pools))
	uniq := pools[:0:0]
	for _, p := range pools {
		if p != nil && !seen[p.name] {
			seen[p.name] = true
			uniq = append(uniq, p)
		}
	}
	poolGauge := func(family string, v func(*Pool) int64) {
		if len(uniq) == 0 {
			return
		}
		metrics.WriteMetadataIfNeeded(w, family, "gauge")
		for _, p := range uniq {
			fmt.Fprintf(w, "%s{pool=\"%s\"} %d\n", family, stages.LabelValue(p.name), v(p))
		}
	}
	backendGauge := func(family string, v func(*Backend) int64) {
		if len(uniq) == 0 {
			return
		}
		metrics.WriteMetadataIfNeeded(w, family, "gauge")
		for _, p := range uniq {
			for _, b := range p.backends {
				fmt.Fprintf(w, "%s{pool=\"%s\",backend=\"%s\"} %d\n", family, stages.LabelValue(p.name), stages.LabelValue(b.Address), v(b))
			}
		}
	}
	poolGauge("expressgateway_pool_backends", func(p *Pool) int64 { return int64(len(p.backends)) })
	poolGauge("expressgateway_pool_healthy_backends", func(p *Pool) int64 { return int64(len(p.backends)) - int64(p.nUnhealthy.Load()) })
	poolGauge("expressgateway_pool_panic_mode", func(p *Pool) int64 { return b2i(p.Panicking()) })
	// A maglev pool's table fingerprint: instances sharing the config
	// (behind ECMP) must show one value, or a flow hashed by one and then
	// another lands on two backends.
	first := true
	for _, p := range uniq {
		if m, ok := p.picker.(*maglev); ok {
			if first {
				metrics.WriteMetadataIfNeeded(w, "expressgateway_pool_maglev_table_hash", "gauge")
				first = false
			}
			fmt.Fprintf(w, "expressgateway_pool_maglev_table_hash{pool=\"%s\"} %d\n", stages.LabelValue(p.name), m.hash)
		}
	}
	backendGauge("expressgateway_backend_weight", func(b *Backend) int64 { return int64(b.Weight) })
	backendGauge("expressgateway_backend_active_requests", (*Backend).Active)
	backendGauge("expressgateway_upstream_connections", (*Backend).Conns)
	backendGauge("expressgateway_upstream_pending_requests", (*Backend).Pending)
	backendGauge("expressgateway_circuit_breaker_open", func(b *Backend) int64 { return b2i(b.Full()) })
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}
