package passthrough

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// routeKind is how a datagram found its backend.
type routeKind uint8

const (
	routeFlow     routeKind = iota // its 4-tuple's flow
	routeCID                       // a QUIC-LB Connection ID, statelessly
	routeLearned                   // the learned-CID table
	routeFallback                  // the consistent hash of the 4-tuple
	nRoutes
)

var routeNames = [nRoutes]string{"flow", "cid", "learned", "fallback"}

// dropReason is why a client datagram was not forwarded.
type dropReason uint8

const (
	reasonMalformed dropReason = iota
	reasonVersionNegotiation
	reasonShortDCID
	reasonStrictBinding
	reasonNoBackend
	reasonPerIPCap
	reasonBacklogFull
	reasonTooBig
	reasonDial
	reasonNotBackend      // an SPP reply from an address not in the pool
	reasonNoFlow          // an SPP reply for a client without a flow on that backend
	reasonInitialTooSmall // an Initial that would start a flow, under 1200 bytes
	reasonInitialRate     // over initial_rate_per_ip
	reasonRetryToken      // a Retry token refused (tokens_rejected says why)
	nReasons
)

var reasonNames = [nReasons]string{"malformed", "version_negotiation", "short_dcid", "strict_source_binding", "no_backend", "per_ip_cap", "backlog_full", "too_big", "upstream_socket", "not_a_backend", "no_flow", "initial_too_small", "initial_rate", "retry_token"}

func (r dropReason) String() string { return reasonNames[r] }

// listenerMetrics are one listener's series, labelled by its name.
type listenerMetrics struct {
	name           string
	packets        [nRoutes]*metrics.Counter
	drops          [nReasons]*metrics.Counter
	toClient       *metrics.Counter
	sendErrors     *metrics.Counter
	flowsTotal     *metrics.Counter
	evictCap       *metrics.Counter
	evictIdle      *metrics.Counter
	learnedEvicted *metrics.Counter
	retrySent      *metrics.Counter
	tokenRejects   [nRejects]*metrics.Counter
}

func newListenerMetrics(name string) *listenerMetrics {
	l := `listener="` + name + `"`
	m := &listenerMetrics{
		name:           name,
		toClient:       metrics.GetOrCreateCounter(`expressgateway_passthrough_datagrams_to_client_total{` + l + `}`),
		sendErrors:     metrics.GetOrCreateCounter(`expressgateway_passthrough_send_errors_total{` + l + `}`),
		flowsTotal:     metrics.GetOrCreateCounter(`expressgateway_passthrough_flows_total{` + l + `}`),
		evictCap:       metrics.GetOrCreateCounter(`expressgateway_passthrough_flow_evictions_total{` + l + `,reason="max_quic_connections"}`),
		evictIdle:      metrics.GetOrCreateCounter(`expressgateway_passthrough_flow_evictions_total{` + l + `,reason="idle"}`),
		learnedEvicted: metrics.GetOrCreateCounter(`expressgateway_passthrough_learned_evictions_total{` + l + `}`),
		retrySent:      metrics.GetOrCreateCounter(`expressgateway_passthrough_retry_sent_total{` + l + `}`),
	}
	for i, r := range rejectNames {
		m.tokenRejects[i] = metrics.GetOrCreateCounter(`expressgateway_passthrough_retry_tokens_rejected_total{` + l + `,reason="` + r + `"}`)
	}
	for i, r := range routeNames {
		m.packets[i] = metrics.GetOrCreateCounter(`expressgateway_passthrough_datagrams_total{` + l + `,route="` + r + `"}`)
	}
	for i, r := range reasonNames {
		m.drops[i] = metrics.GetOrCreateCounter(`expressgateway_passthrough_dropped_total{` + l + `,reason="` + r + `"}`)
	}
	return m
}

// live maps a listener name to its running listener, for the gauges
// (registered once per name per process; a restarted listener of the
// same name takes the name over).
var live sync.Map // string → *Listener

func (m *listenerMetrics) register(l *Listener) {
	live.Store(m.name, l)
	lbl := `{listener="` + m.name + `"}`
	name := m.name
	metrics.GetOrCreateGauge(`expressgateway_passthrough_flows`+lbl, func() float64 {
		if v, ok := live.Load(name); ok {
			return float64(v.(*Listener).Flows())
		}
		return 0
	})
	metrics.GetOrCreateGauge(`expressgateway_passthrough_learned_cids`+lbl, func() float64 {
		if v, ok := live.Load(name); ok {
			return float64(v.(*Listener).Learned())
		}
		return 0
	})
}

func (m *listenerMetrics) unregister(l *Listener) { live.CompareAndDelete(m.name, l) }

// throttle lets one event of each kind through per window.
type throttle struct {
	mu     sync.Mutex
	window int64
	last   map[int]int64
}

func newThrottle(window int64) *throttle { return &throttle{window: window, last: map[int]int64{}} }

// allow reports whether an event of kind k at now may be logged.
func (t *throttle) allow(k int, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[k]; ok && now-last < t.window {
		return false
	}
	t.last[k] = now
	return true
}
