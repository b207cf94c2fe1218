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

// WorkBytesPerFrame is the useful work that pays for one control frame:
// every this many bytes of DATA the client sends, or of response credit it
// returns on the connection, earn each control-frame rule one token. A
// control frame is 13–17 bytes on the wire, so a client can at most about
// double the bytes it sends with control frames that ride on real work
// (nginx's flood check allows eight times).
const WorkBytesPerFrame = 16

// FrameRate is the control-frame flood rule: a token bucket per connection
// and frame kind (SETTINGS, PING, empty DATA, WINDOW_UPDATE, PRIORITY)
// holding PerSecond tokens, refilled at PerSecond per second and by the
// useful work the connection does (Earn). Each of those frames costs us
// work or an answer (an ACK we must queue) and carries no request: on an
// otherwise idle connection, past the rate it gets GOAWAY
// ENHANCE_YOUR_CALM within a second. The PINGs, SETTINGS and
// WINDOW_UPDATEs that go with DATA (grpc-go's BDP estimator pings with each
// burst it receives, thousands a second on loopback) are paid for by that
// DATA, as in HAProxy's glitch and nginx's flood accounting, so a busy
// stream runs for as long as it moves bytes.
type FrameRate struct {
	PerSecond int

	tokens float64
	last   time.Time
	work   int64 // useful bytes not yet turned into a token

	// Frames and Earned count what the rule saw, for the log of a close.
	Frames, Earned, Work int64
}

// Allow takes one token at now; false means the rate is exceeded.
func (r *FrameRate) Allow(now time.Time) bool {
	if r.PerSecond <= 0 {
		return true
	}
	r.Frames++
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

// Earn credits n bytes of useful work to each rule: a token per
// WorkBytesPerFrame bytes, never past the bucket's size, so work done
// long ago buys no burst now.
func (r *FrameRate) Earn(n int) {
	if r.PerSecond <= 0 || n <= 0 {
		return
	}
	r.Work += int64(n)
	r.work += int64(n)
	t := r.work / WorkBytesPerFrame
	if t == 0 {
		return
	}
	r.work -= t * WorkBytesPerFrame
	r.Earned += t
	if r.last.IsZero() {
		return // the bucket starts full
	}
	r.tokens = min(float64(r.PerSecond), r.tokens+float64(t))
}

// EarnAll credits n bytes of useful work to each of rs.
func EarnAll(n int, rs ...*FrameRate) {
	for _, r := range rs {
		r.Earn(n)
	}
}
