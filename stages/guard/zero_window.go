package guard

import "time"

// H2ZeroWindow counts streams reset because the client held its window at
// zero while we had data for it past the timeout.
var H2ZeroWindow = Counter("h2_zero_window_stall")

// ZeroWindow is the zero-window stall rule: a peer that keeps a stream's (or
// the connection's) send window at zero while we hold data for it pins that
// data. The data held is at most the stream's bus budget; past Timeout the
// stream is reset and the connection closed.
type ZeroWindow struct {
	Timeout time.Duration
}

// Expired reports whether a stream blocked since since has stalled too
// long at now. A zero since means not blocked.
func (z ZeroWindow) Expired(since, now time.Time) bool {
	return z.Timeout > 0 && !since.IsZero() && now.Sub(since) >= z.Timeout
}
