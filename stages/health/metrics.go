package health

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages"
)

// backendMetrics are one backend's health series, resolved once.
type backendMetrics struct {
	up        *metrics.Gauge               // backend_up: 1 healthy, 0 down or ejected
	toUp      *metrics.Counter             // backend_health_transitions_total{to="up"}
	toDown    *metrics.Counter             // backend_health_transitions_total{to="down"}
	ejections *metrics.Counter             // backend_ejections_total
	duration  *metrics.PrometheusHistogram // health_check_duration_seconds
}

func newBackendMetrics(set *metrics.Set, pool, backend string) backendMetrics {
	l := `pool="` + stages.LabelValue(pool) + `",backend="` + stages.LabelValue(backend) + `"`
	return backendMetrics{
		up:        set.GetOrCreateGauge("expressgateway_backend_up{"+l+"}", nil),
		toUp:      set.GetOrCreateCounter(`expressgateway_backend_health_transitions_total{` + l + `,to="up"}`),
		toDown:    set.GetOrCreateCounter(`expressgateway_backend_health_transitions_total{` + l + `,to="down"}`),
		ejections: set.GetOrCreateCounter("expressgateway_backend_ejections_total{" + l + "}"),
		duration:  stages.Histogram(set, "expressgateway_health_check_duration_seconds{"+l+"}"),
	}
}

// setUp records the backend's health, counting a transition when it
// changes (a down or ejected backend that stays out counts once).
func (m backendMetrics) setUp(up bool) {
	was := m.up.Get() == 1
	m.up.Set(boolFloat(up))
	switch {
	case up && !was:
		m.toUp.Inc()
	case !up && was:
		m.toDown.Inc()
	}
}
