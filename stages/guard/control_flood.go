package guard

import "time"

// Counters of the HTTP/2 control-frame floods, one per frame kind.
var (
	H2SettingsFlood     = Counter("h2_settings_flood")
	H2PingFlood         = Counter("h2_ping_flood")
	H2EmptyDataFlood    = Counter("h2_empty_data_flood")
	H2WindowUpdateFlood = Counter("h2_window_update_flood")
	H2PriorityFlood     = Counter("h2_priority_flood")
)

// TinyWindowIncrement is the WINDOW_UPDATE increment below which an update
// counts against the flood rate. A real client returns credit for data we
// sent, in large steps; a flood of tiny increments only makes us work (and a
// flood of large ones overflows the window: FLOW_CONTROL_ERROR).
const TinyWindowIncrement = 1024

// FrameRate is the control-frame flood rule: a token bucket per connection
// and frame kind (SETTINGS, PING, empty DATA, WINDOW_UPDATE, PRIORITY)
// holding PerSecond tokens, refilled at PerSecond per second. Each of those
// frames costs us work or an answer (an ACK we must queue) and carries no
// request: past the rate the connection gets GOAWAY ENHANCE_YOUR_CALM.
type FrameRate struct {
	PerSecond int

	tokens float64
	last   time.Time
}

// Allow takes one token at now; false means the rate is exceeded.
func (r *FrameRate) Allow(now time.Time) bool {
	if r.PerSecond <= 0 {
		return true
	}
	limit := float64(r.PerSecond)
	if r.last.IsZero() {
		r.tokens = limit
	} else if d := now.Sub(r.last); d > 0 {
		r.tokens = min(limit, r.tokens+d.Seconds()*limit)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
