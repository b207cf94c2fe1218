package decode

import (
	"time"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// slowBody is the watcher's view of one request body: the H2 form of slow
// POST. The connection reader serves every stream, so there is no read
// deadline per stream; instead the watcher samples each open body on its
// tick. Only time during which the client could send (its stream and
// connection windows open) counts: a backend that drains slowly keeps the
// windows shut and is never blamed on the client.
type slowBody struct {
	rate  guard.BodyRate
	seen  int64         // rx at the previous tick
	idle  time.Duration // sendable time since the last byte
	last  time.Time     // the previous tick
	armed bool
}

// slowBodies cuts the request bodies that stalled past the body timeout or
// fell below the minimum rate: RST_STREAM(CANCEL) to the client and an
// aborted body (never a complete one) to the backend.
func (c *H2Conn) slowBodies(now time.Time) {
	if c.cfg.BodyTimeout <= 0 && c.cfg.MinBodyBps <= 0 {
		return
	}
	var cut []*h2Stream
	c.mu.Lock()
	for _, s := range c.streams {
		if s.bodyOpen.Load() && c.judgeBody(s, now) {
			cut = append(cut, s)
		}
	}
	c.mu.Unlock()
	for _, s := range cut {
		if !s.bodyOpen.Load() {
			continue // ended meanwhile
		}
		guard.SlowBodyReaped.Inc()
		c.out.Reset(s.id, h2.ErrCodeCancel)
		c.codec.Forget(s.id)
		c.abort(s, frames.CodeTimeout)
	}
}

// judgeBody updates a body's sample and reports whether it must be cut
// (caller holds c.mu).
func (c *H2Conn) judgeBody(s *h2Stream, now time.Time) bool {
	sb := &s.slow
	if !sb.armed {
		sb.armed = true
		sb.rate = guard.BodyRate{MinBps: c.cfg.MinBodyBps, Window: c.cfg.RateWindow}
		sb.last = now
		sb.seen = s.rx.Load()
		return false
	}
	dt := now.Sub(sb.last)
	sb.last = now
	rx := s.rx.Load()
	n := rx - sb.seen
	sb.seen = rx
	if !c.clientCanSend(s) {
		sb.idle = 0
		return false
	}
	if n > 0 {
		sb.idle = 0
	} else {
		sb.idle += dt
	}
	if c.cfg.BodyTimeout > 0 && sb.idle >= c.cfg.BodyTimeout {
		return true
	}
	return sb.rate.Window > 0 && !sb.rate.Observe(dt, int(n))
}

// clientCanSend reports whether the client surely has window to send on
// s: our receive windows minus the credit not yet announced (under a
// quarter window) are still open.
func (c *H2Conn) clientCanSend(s *h2Stream) bool {
	if s.cs == nil {
		return false
	}
	stream := max(c.cfg.StreamWindow/4, 1)
	conn := max(c.cfg.ConnWindow, h2.InitialWindowSize) / 4
	return s.cs.Recv.Avail() >= int64(stream) && c.codec.ConnWindow().Avail() >= int64(conn)
}
