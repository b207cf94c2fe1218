package guard

import "github.com/VictoriaMetrics/metrics"

// Counter returns the process-wide counter for a guard rule token, the
// series expressgateway_guard_hits_total{rule="<token>"}: one family, so a
// dashboard sums or tops it by rule. Tokens are the rules' own constants,
// never a client's bytes. Each rule resolves its counter once, at start-up.
func Counter(token string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`expressgateway_guard_hits_total{rule="` + token + `"}`)
}

// Counters of the H1 rules, resolved once.
var (
	SlowlorisReaped = Counter("slowloris_reaped")
	SlowBodyReaped  = Counter("slow_body_reaped")
	BodyTooLarge    = Counter("body_too_large")
	HeadTooLarge    = Counter("header_too_large")
	URITooLong      = Counter("uri_too_long")
	Smuggling       = Counter("request_rejected")
	PerIPCap        = Counter("per_ip_cap")
	InflightShed    = Counter("inflight_shed")
	KeepaliveCap    = Counter("keepalive_cap")
)

// Counters of the WebSocket tunnel rules, resolved once.
var (
	WSHandshakeRefused = Counter("websocket_handshake_refused")
	WSProtocolError    = Counter("websocket_protocol_error")
	WSMessageTooBig    = Counter("websocket_message_too_big")
	WSPingFlood        = Counter("websocket_ping_flood")
	WSSlowFrame        = Counter("websocket_slow_frame")
	WSIdleClosed       = Counter("websocket_idle_closed")
	WSTunnelCap        = Counter("websocket_tunnel_cap")
)
