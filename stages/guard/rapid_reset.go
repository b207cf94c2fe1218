package guard

import "time"

// DefaultRapidResetWindow is the span over which client-reset streams are
// counted. Browsers cancel a few streams per navigation; CVE-2023-44487
// resets thousands per second, so a 10 s window separates them widely.
const DefaultRapidResetWindow = 10 * time.Second

// H2RapidReset counts connections closed for HTTP/2 Rapid Reset.
var H2RapidReset = Counter("h2_rapid_reset")

// RapidReset is the CVE-2023-44487 rule: streams the client opens and then
// resets before their response is complete are counted in a fixed window;
// past Threshold in one window the connection gets GOAWAY
// ENHANCE_YOUR_CALM. Each reset also cancels the stream's upstream request,
// so the attack costs the backend nothing either.
type RapidReset struct {
	Threshold int
	Window    time.Duration

	start time.Time
	n     int
}

// Reset records a client reset at now; false means the threshold is crossed.
func (r *RapidReset) Reset(now time.Time) bool {
	if r.Threshold <= 0 {
		return true
	}
	w := r.Window
	if w <= 0 {
		w = DefaultRapidResetWindow
	}
	if r.start.IsZero() || now.Sub(r.start) >= w {
		r.start, r.n = now, 0
	}
	r.n++
	return r.n <= r.Threshold
}
