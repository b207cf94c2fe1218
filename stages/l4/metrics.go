package l4

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages"
)

// The relays' series, labelled by listener and, where a backend is known,
// by backend. A reload that removes a listener or backend unregisters
// them (pipeline's unregisterGone); they are resolved per connection or
// flow, never cached across it, so a later one makes a fresh series.

// tcpSeries are one TCP relay connection's series.
type tcpSeries struct {
	conns, connectErrors          *metrics.Counter
	bytesToBackend, bytesToClient *metrics.Counter
}

func newTCPSeries(listener, backend string) tcpSeries {
	l := `listener="` + stages.LabelValue(listener) + `",backend="` + stages.LabelValue(backend) + `"`
	return tcpSeries{
		conns:          metrics.GetOrCreateCounter(`expressgateway_l4_connections_total{` + l + `}`),
		connectErrors:  metrics.GetOrCreateCounter(`expressgateway_l4_connect_errors_total{` + l + `}`),
		bytesToBackend: metrics.GetOrCreateCounter(`expressgateway_l4_bytes_total{` + l + `,direction="to_backend"}`),
		bytesToClient:  metrics.GetOrCreateCounter(`expressgateway_l4_bytes_total{` + l + `,direction="to_client"}`),
	}
}

// udpSeries are a UDP relay's listener-wide series.
type udpSeries struct {
	listener                            string
	evictCap, evictIdle                 *metrics.Counter
	dropTooBig, dropNoBackend, dropSend *metrics.Counter
	refused                             *metrics.Counter
}

func newUDPSeries(listener string) *udpSeries {
	l := `listener="` + stages.LabelValue(listener) + `"`
	return &udpSeries{
		listener:      listener,
		evictCap:      metrics.GetOrCreateCounter(`expressgateway_l4_udp_flow_evictions_total{` + l + `,reason="max_flows"}`),
		evictIdle:     metrics.GetOrCreateCounter(`expressgateway_l4_udp_flow_evictions_total{` + l + `,reason="idle"}`),
		dropTooBig:    metrics.GetOrCreateCounter(`expressgateway_l4_udp_dropped_total{` + l + `,reason="too_big"}`),
		dropNoBackend: metrics.GetOrCreateCounter(`expressgateway_l4_udp_dropped_total{` + l + `,reason="no_backend"}`),
		dropSend:      metrics.GetOrCreateCounter(`expressgateway_l4_udp_dropped_total{` + l + `,reason="send_error"}`),
		refused:       metrics.GetOrCreateCounter(`expressgateway_l4_udp_dropped_total{` + l + `,reason="backend_refused"}`),
	}
}

// udpFlowSeries are one flow's series, by its listener and backend.
type udpFlowSeries struct {
	flows, toBackend, toClient    *metrics.Counter
	bytesToBackend, bytesToClient *metrics.Counter
}

// flow resolves the series of a new flow to backend.
func (m *udpSeries) flow(backend string) *udpFlowSeries {
	l := `listener="` + stages.LabelValue(m.listener) + `",backend="` + stages.LabelValue(backend) + `"`
	return &udpFlowSeries{
		flows:          metrics.GetOrCreateCounter(`expressgateway_l4_udp_flows_total{` + l + `}`),
		toBackend:      metrics.GetOrCreateCounter(`expressgateway_l4_udp_datagrams_total{` + l + `,direction="to_backend"}`),
		toClient:       metrics.GetOrCreateCounter(`expressgateway_l4_udp_datagrams_total{` + l + `,direction="to_client"}`),
		bytesToBackend: metrics.GetOrCreateCounter(`expressgateway_l4_udp_bytes_total{` + l + `,direction="to_backend"}`),
		bytesToClient:  metrics.GetOrCreateCounter(`expressgateway_l4_udp_bytes_total{` + l + `,direction="to_client"}`),
	}
}
