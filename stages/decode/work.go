package decode

import (
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// earn pays the SETTINGS, PING and WINDOW_UPDATE flood rules with the
// useful work an event shows: DATA bytes the client sent, and response
// bytes it acknowledged with connection credit (bounded by what we sent:
// more overflows the window, a FLOW_CONTROL_ERROR). Empty DATA and
// PRIORITY earn nothing: they are never part of useful work.
func (c *H2Conn) earn(ev h2.Event) {
	var n int
	switch {
	case ev.Type == h2.EvData:
		n = len(ev.Data)
	case ev.Type == h2.EvWindowUpdate && ev.Stream == 0:
		n = int(ev.Incr)
	default:
		return
	}
	guard.EarnAll(n, &c.settings, &c.ping, &c.window)
}

// logFlood logs the rule that closes a connection, with what it counted.
func (c *H2Conn) logFlood(r *guard.FrameRate, reason string) {
	c.cfg.Log.Warn().Str("rule", reason).Str("remote", c.info.Remote.String()).
		Int("per_second", r.PerSecond).Int64("frames", r.Frames).
		Int64("earned", r.Earned).Int64("work_bytes", r.Work).
		Msg("h2 control-frame flood: connection closed")
}
