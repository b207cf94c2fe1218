package health

import (
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// backendMetrics are one backend's health series, resolved once.
type backendMetrics struct {
	up        *metrics.Gauge     // backend_up: 1 healthy, 0 down or ejected
	ejections *metrics.Counter   // backend_ejections_total
	duration  *metrics.Histogram // health_check_duration_seconds
}

func newBackendMetrics(set *metrics.Set, pool, backend string) backendMetrics {
	l := `{pool="` + labelValue(pool) + `",backend="` + labelValue(backend) + `"}`
	return backendMetrics{
		up:        set.GetOrCreateGauge("backend_up"+l, nil),
		ejections: set.GetOrCreateCounter("backend_ejections_total" + l),
		duration:  set.GetOrCreateHistogram("health_check_duration_seconds" + l),
	}
}

// labelValue escapes s for a Prometheus label value.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
