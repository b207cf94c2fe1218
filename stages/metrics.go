package stages

import (
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// MetricPrefix starts the name of every series the gateway exports, so its
// families never collide with another exporter's (panics_total,
// connections_active) on the same Prometheus.
const MetricPrefix = "expressgateway_"

// LatencyBuckets are the upper bounds, in seconds, of every duration
// histogram: a proxy's latencies run from a cached answer (100 µs) to a
// long poll's timeout (60 s), and Prometheus's histogram_quantile() needs
// fixed le buckets to compute a p99 across instances.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60,
}

// Histogram returns set's duration histogram name (a family in seconds,
// with its labels) with the latency buckets; nil set is the default one,
// which /metrics serves.
func Histogram(set *metrics.Set, name string) *metrics.PrometheusHistogram {
	if set == nil {
		set = metrics.GetDefaultSet()
	}
	return set.GetOrCreatePrometheusHistogramExt(name, LatencyBuckets)
}

// LabelValue escapes s for a Prometheus label value.
func LabelValue(s string) string { return labelEscaper.Replace(s) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func init() {
	// # HELP and # TYPE lines: Prometheus and promtool type a family by
	// them, not by its name.
	metrics.ExposeMetadata(true)
}
