package guard

// Counters of the HTTP/2 connection-health rules.
var (
	H2LocalErrorResets = Counter("h2_local_error_resets")
	H2KeepAliveTimeout = Counter("h2_keepalive_timeout")
)

// LocalResets is the RUSTSEC-2024-0003 rule: every stream we reset
// because the peer broke the protocol costs us work while costing the
// peer one frame, so a connection may cause at most Threshold such resets
// in its life; the next gets GOAWAY ENHANCE_YOUR_CALM.
type LocalResets struct {
	Threshold int

	n int
}

// Reset records one local reset; false means the threshold is crossed.
func (l *LocalResets) Reset() bool {
	if l.Threshold <= 0 {
		return true
	}
	l.n++
	return l.n <= l.Threshold
}
