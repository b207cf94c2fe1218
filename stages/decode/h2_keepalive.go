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

	acks uint64    // the reader's ACK count when our PING went out
	sent time.Time // our PING is outstanding since (zero: none)
}

// quietSince is when the reader last saw a frame (or the connection
// began).
func (c *H2Conn) quietSince() time.Time {
	return c.born.Add(time.Duration(c.lastFrame.Load()))
}

// keepAlive runs one watcher pass of the keep-alive rule; false means the
// connection is being closed.
func (c *H2Conn) keepAlive(k *h2KeepAlive, now time.Time) bool {
	if k.interval <= 0 {
		return true
	}
	if !k.sent.IsZero() {
		if c.pingAcks.Load() != k.acks {
			k.sent = time.Time{}
			return true
		}
		if now.Sub(k.sent) >= k.timeout {
			guard.H2KeepAliveTimeout.Inc()
			c.goAwayError(h2.ErrCodeNo, "h2_keepalive_timeout")
			return false
		}
		return true
	}
	if now.Sub(c.quietSince()) >= k.interval {
		k.sent, k.acks = now, c.pingAcks.Load()
		c.out.Ping(keepAlivePing)
	}
	return true
}

// keepAliveDue is when the keep-alive rule next has something to do: the
// PING's deadline, or the end of the quiet interval; false: never.
func (c *H2Conn) keepAliveDue(k *h2KeepAlive) (time.Time, bool) {
	switch {
	case k.interval <= 0:
		return time.Time{}, false
	case !k.sent.IsZero():
		return k.sent.Add(k.timeout), true
	}
	return c.quietSince().Add(k.interval), true
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
