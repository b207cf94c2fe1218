package decode

import (
	"time"

	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// keepAlivePing is the payload of our keep-alive PINGs, told apart from
// the drain PING by its ACK.
var keepAlivePing = [8]byte{'e', 'g', '-', 'a', 'l', 'i', 'v', 'e'}

// h2KeepAlive is the watcher's keep-alive state: a client quiet for
// interval gets a PING; one that does not ACK it within timeout is gone
// (a dead peer, a NAT that dropped the mapping) and its connection closes
// instead of holding streams and budget until the TCP timeout.
type h2KeepAlive struct {
	interval, timeout time.Duration

	frames, acks uint64    // the reader's counters at the last change
	quietSince   time.Time // last time a frame was seen
	sent         time.Time // our PING is outstanding since (zero: none)
}

// keepAlive runs one watcher tick of the keep-alive rule; false means the
// connection is being closed.
func (c *H2Conn) keepAlive(k *h2KeepAlive, now time.Time) bool {
	if k.interval <= 0 {
		return true
	}
	if n := c.frames.Load(); n != k.frames || k.quietSince.IsZero() {
		k.frames, k.quietSince = n, now
	}
	if !k.sent.IsZero() {
		if a := c.pingAcks.Load(); a != k.acks {
			k.acks, k.sent, k.quietSince = a, time.Time{}, now
			return true
		}
		if now.Sub(k.sent) >= k.timeout {
			guard.H2KeepAliveTimeout.Inc()
			c.goAwayError(h2.ErrCodeNo, "h2_keepalive_timeout")
			return false
		}
		return true
	}
	if now.Sub(k.quietSince) >= k.interval {
		k.sent = now
		c.out.Ping(keepAlivePing)
	}
	return true
}

// localReset counts a stream we reset for the peer's error; false stops
// the reader (GOAWAY ENHANCE_YOUR_CALM past max_local_error_reset_streams).
func (c *H2Conn) localReset() bool {
	if c.local.Reset() {
		return true
	}
	guard.H2LocalErrorResets.Inc()
	c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_local_error_resets")
	return false
}
