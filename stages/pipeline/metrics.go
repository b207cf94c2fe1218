package pipeline

import (
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages/route"
)

// Process-wide families (metrics are the only global state).
var (
	connectErrors    = metrics.NewCounter("expressgateway_upstream_connect_errors_total")
	upstreamTimeouts = metrics.NewCounter("expressgateway_upstream_timeouts_total")
)

// reqKey names one request counter series; values are resolved once and
// cached, so no label is formatted per request.
type reqKey struct {
	listener, route, backend, proto string
	class                           uint8
}

type reqSeries struct {
	count    *metrics.Counter
	duration *metrics.Histogram
	bytesIn  *metrics.Counter
	bytesOut *metrics.Counter
}

var seriesCache sync.Map // reqKey → *reqSeries

func seriesFor(k reqKey) *reqSeries {
	if s, ok := seriesCache.Load(k); ok {
		return s.(*reqSeries)
	}
	base := `listener="` + k.listener + `",route="` + k.route + `",backend="` + k.backend + `",protocol="` + k.proto + `"`
	s := &reqSeries{
		count:    metrics.GetOrCreateCounter(`expressgateway_http_requests_total{` + base + `,status_class="` + strconv.Itoa(int(k.class)) + `xx"}`),
		duration: metrics.GetOrCreateHistogram(`expressgateway_http_request_duration_seconds{` + base + `}`),
		bytesIn:  metrics.GetOrCreateCounter(`expressgateway_http_request_bytes_total{` + base + `}`),
		bytesOut: metrics.GetOrCreateCounter(`expressgateway_http_response_bytes_total{` + base + `}`),
	}
	v, _ := seriesCache.LoadOrStore(k, s)
	return v.(*reqSeries)
}

// owners are the label values a gateway's per-listener, per-pool and
// per-backend series carry: a reload unregisters the series whose owner it
// removed, so /metrics never reports a backend that is gone.
type owners struct {
	listeners        map[string]bool
	pools            map[string]bool
	poolBackends     map[[2]string]bool // pool, backend address
	listenerBackends map[[2]string]bool // listener, backend address
}

// seriesOwners lists the owners of g's series (under g.mu).
func (g *Gateway) seriesOwners() owners {
	o := owners{listeners: map[string]bool{}, pools: map[string]bool{}, poolBackends: map[[2]string]bool{}, listenerBackends: map[[2]string]bool{}}
	add := func(listener string, p *route.Pool) {
		if p == nil {
			return
		}
		o.pools[p.Name()] = true
		for _, b := range p.Backends() {
			o.poolBackends[[2]string{p.Name(), b.Address}] = true
			if listener != "" {
				o.listenerBackends[[2]string{listener, b.Address}] = true
			}
		}
	}
	for _, p := range g.pools {
		add("", p)
	}
	for _, l := range g.listeners {
		o.listeners[l.cfg.Name] = true
		add(l.cfg.Name, l.pool.Load())
		if l.proxy == nil {
			continue
		}
		t := l.proxy.Table.Load()
		for _, r := range t.routes {
			add(l.cfg.Name, r.Pool)
		}
		if t.def != nil {
			add(l.cfg.Name, t.def.Pool)
		}
	}
	return o
}

// unregisterGone unregisters every series whose listener, pool or backend
// was in before and is not in after.
func unregisterGone(before, after owners) {
	gone := func(name string) bool {
		l, hasL := labelOf(name, "listener")
		p, hasP := labelOf(name, "pool")
		b, hasB := labelOf(name, "backend")
		switch {
		case hasL && before.listeners[l] && !after.listeners[l]:
			return true
		case hasP && hasB:
			k := [2]string{p, b}
			return before.poolBackends[k] && !after.poolBackends[k]
		case hasP:
			return before.pools[p] && !after.pools[p]
		case hasL && hasB && b != "":
			k := [2]string{l, b}
			return before.listenerBackends[k] && !after.listenerBackends[k]
		}
		return false
	}
	// Cached request series first, so that a request finishing now makes
	// a new series rather than counting into an unregistered one.
	seriesCache.Range(func(k, _ any) bool {
		rk := k.(reqKey)
		if (before.listeners[rk.listener] && !after.listeners[rk.listener]) ||
			(rk.backend != "" && before.listenerBackends[[2]string{rk.listener, rk.backend}] && !after.listenerBackends[[2]string{rk.listener, rk.backend}]) {
			seriesCache.Delete(k)
		}
		return true
	})
	for _, name := range metrics.ListMetricNames() {
		if gone(name) {
			metrics.UnregisterMetric(name)
		}
	}
}

// labelOf returns the value of label key in a series name
// (family{a="x",key="v"}); values here are addresses and names, which
// carry no escaped quote.
func labelOf(name, key string) (string, bool) {
	i := strings.IndexByte(name, '{')
	if i < 0 {
		return "", false
	}
	rest := name[i:]
	for _, sep := range []string{"{", ","} {
		if j := strings.Index(rest, sep+key+`="`); j >= 0 {
			v := rest[j+len(sep)+len(key)+2:]
			if e := strings.IndexByte(v, '"'); e >= 0 {
				return v[:e], true
			}
		}
	}
	return "", false
}
