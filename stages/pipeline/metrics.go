package pipeline

import (
	"strconv"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// Process-wide families (DESIGN: metrics are the only global state).
var (
	connectErrors    = metrics.NewCounter("upstream_connect_errors_total")
	upstreamTimeouts = metrics.NewCounter("upstream_timeouts_total")
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
		count:    metrics.GetOrCreateCounter(`http_requests_total{` + base + `,status_class="` + strconv.Itoa(int(k.class)) + `xx"}`),
		duration: metrics.GetOrCreateHistogram(`http_request_duration_seconds{` + base + `}`),
		bytesIn:  metrics.GetOrCreateCounter(`http_request_bytes_total{` + base + `}`),
		bytesOut: metrics.GetOrCreateCounter(`http_response_bytes_total{` + base + `}`),
	}
	v, _ := seriesCache.LoadOrStore(k, s)
	return v.(*reqSeries)
}
