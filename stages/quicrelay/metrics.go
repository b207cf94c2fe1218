package quicrelay

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages"
)

// The relay's series, labelled by listener and, where a backend is known,
// by backend. They are resolved per connection, never cached across one,
// so a reload that unregisters a listener's series leaves no stale one.

// connSeries are one relayed connection's series.
type connSeries struct {
	conns                         *metrics.Counter
	bytesToBackend, bytesToClient *metrics.Counter
	// streams by who opened them and their kind.
	clientBidi, clientUni, backendBidi, backendUni *metrics.Counter
	dgramToBackend, dgramToClient                  *metrics.Counter
	dropToBackend, dropToClient                    *metrics.Counter
}

func listenerLabel(listener string) string {
	return `listener="` + stages.LabelValue(listener) + `"`
}

func newConnSeries(listener, backend string) *connSeries {
	l := listenerLabel(listener)
	lb := l + `,backend="` + stages.LabelValue(backend) + `"`
	streams := func(by, kind string) *metrics.Counter {
		return metrics.GetOrCreateCounter(`expressgateway_quicrelay_streams_total{` + l + `,opened_by="` + by + `",kind="` + kind + `"}`)
	}
	return &connSeries{
		conns:          metrics.GetOrCreateCounter(`expressgateway_quicrelay_connections_total{` + lb + `}`),
		bytesToBackend: metrics.GetOrCreateCounter(`expressgateway_quicrelay_bytes_total{` + lb + `,direction="to_backend"}`),
		bytesToClient:  metrics.GetOrCreateCounter(`expressgateway_quicrelay_bytes_total{` + lb + `,direction="to_client"}`),
		clientBidi:     streams("client", "bidi"),
		clientUni:      streams("client", "uni"),
		backendBidi:    streams("backend", "bidi"),
		backendUni:     streams("backend", "uni"),
		dgramToBackend: metrics.GetOrCreateCounter(`expressgateway_quicrelay_datagrams_total{` + l + `,direction="to_backend"}`),
		dgramToClient:  metrics.GetOrCreateCounter(`expressgateway_quicrelay_datagrams_total{` + l + `,direction="to_client"}`),
		dropToBackend:  metrics.GetOrCreateCounter(`expressgateway_quicrelay_datagrams_dropped_total{` + l + `,direction="to_backend"}`),
		dropToClient:   metrics.GetOrCreateCounter(`expressgateway_quicrelay_datagrams_dropped_total{` + l + `,direction="to_client"}`),
	}
}

func connectErrors(listener, backend string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`expressgateway_quicrelay_connect_errors_total{` + listenerLabel(listener) + `,backend="` + stages.LabelValue(backend) + `"}`)
}

func noBackend(listener string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`expressgateway_quicrelay_no_backend_total{` + listenerLabel(listener) + `}`)
}
