package decode

import (
	"time"

	"github.com/expressgateway/expressgateway/frames/h2"
)

// drainPing is the payload of the PING that separates the two GOAWAY
// frames of a graceful shutdown; its ACK tells us the client has seen the
// first GOAWAY, so any stream it opens afterwards was opened knowingly.
var drainPing = [8]byte{'e', 'g', '-', 'd', 'r', 'a', 'i', 'n'}

// drainPingTimeout is how long the first GOAWAY waits for the PING's ACK
// before the final GOAWAY goes out anyway.
const drainPingTimeout = time.Second

// goAwayTwoStep starts a graceful shutdown in two steps (RFC 9113 §6.8: "A
// server that is attempting to gracefully shut down a connection SHOULD
// send an initial GOAWAY frame with the last stream identifier set to
// 2^31-1 and a NO_ERROR code ... After allowing time for any in-flight
// stream creation (at least one round-trip time), the server MAY send
// another GOAWAY frame with an updated last stream identifier"). The
// round trip is measured with a PING; goAwayFinal sends the second frame.
func (c *H2Conn) goAwayTwoStep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goingAway || !c.drainPing.IsZero() {
		return
	}
	c.drainPing = time.Now()
	c.out.GoAway(h2.MaxStreamID, h2.ErrCodeNo, "", false)
	c.out.Ping(drainPing)
}

// goAwayFinal sends the second GOAWAY of a two-step shutdown, naming the
// last stream the client opened; streams above it are refused.
func (c *H2Conn) goAwayFinal() {
	c.mu.Lock()
	started := !c.drainPing.IsZero()
	c.mu.Unlock()
	if started {
		c.goAwayGraceful()
	}
}

// drainPingDue sends the final GOAWAY when the PING's ACK is overdue (a
// client that never answers still gets a bounded shutdown).
func (c *H2Conn) drainPingDue(now time.Time) {
	c.mu.Lock()
	due := !c.goingAway && !c.drainPing.IsZero() && now.Sub(c.drainPing) >= drainPingTimeout
	c.mu.Unlock()
	if due {
		c.goAwayGraceful()
	}
}
