package guard

import "time"

// DefaultH3ResetFloodMax is how many request streams a client may reset
// within DefaultH3ResetFloodWindow before its connection is closed with
// H3_EXCESSIVE_LOAD. It stops the HTTP/3 form of Rapid Reset
// (CVE-2023-44487): opening and cancelling streams costs the client one
// packet but makes us start, route and tear down a stream actor each time.
// It matches the H2 rule's default threshold of 100.
const DefaultH3ResetFloodMax = 100

// DefaultH3ResetFloodWindow is the window over which resets are counted.
const DefaultH3ResetFloodWindow = 10 * time.Second

// ResetFlood counts client-reset streams on one connection in fixed
// windows. It is owned by the connection and used under its lock.
type ResetFlood struct {
	Max    int
	Window time.Duration

	start time.Time
	n     int
}

// Observe records one client reset at now and reports whether the
// connection is over the cap and must be closed.
func (r *ResetFlood) Observe(now time.Time) bool {
	if r.Max <= 0 {
		return false
	}
	if r.start.IsZero() || now.Sub(r.start) >= r.Window {
		r.start, r.n = now, 0
	}
	r.n++
	return r.n > r.Max
}

// Counters of the HTTP/3 and QUIC rules, resolved once.
var (
	H3ResetFlood      = Counter("h3_reset_flood")
	H3FieldSectionCap = Counter("h3_field_section_too_large")
	H3QPACKError      = Counter("h3_qpack_decompression_failed")
	H3StreamLifetime  = Counter("h3_stream_lifetime_cap")
	H3EarlyRejected   = Counter("h3_early_data_rejected")
	H3EarlyHeld       = Counter("h3_early_data_held")
	H3EarlyForwarded  = Counter("h3_early_data_forwarded")
	H3Malformed       = Counter("h3_malformed")
	H3ConnError       = Counter("h3_connection_error")
	QUICPerIPCap      = Counter("quic_per_ip_cap")
	QUICConnCap       = Counter("quic_conn_cap")
	QUICRetry         = Counter("quic_retry")
)
