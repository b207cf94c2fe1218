package decode

import (
	"context"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// h2Watch runs the connection's timed rules (zero-window stalls, slow
// bodies, tunnel timeouts, keep-alive PINGs, the drain's PING) from a
// timer, not a goroutine: while streams are open it fires every tick;
// while the connection is quiet (no stream, no drain under way) it fires
// only when the keep-alive rule is next due, or not at all. An idle
// connection then costs no goroutine and no wake-up per tick.
type h2Watch struct {
	mu     sync.Mutex
	t      *time.Timer
	tick   time.Duration
	zw     guard.ZeroWindow
	ka     h2KeepAlive
	sparse bool // armed for the keep-alive rule only (or not armed)
	done   bool // the connection is over, or the watcher closed it
	// stopDrain unregisters the drain's callback.
	stopDrain func() bool
}

// startWatch arms the watcher, and the drain's callback when the listener
// can drain.
func (c *H2Conn) startWatch() {
	w := &c.watch
	w.zw = guard.ZeroWindow{Timeout: c.cfg.ZeroWindowTimeout}
	w.ka = h2KeepAlive{interval: c.cfg.KeepAlive, timeout: c.cfg.KeepAliveTimeout}
	tick := time.Second
	var idle, frame time.Duration
	if c.cfg.WS != nil {
		idle, frame = c.cfg.WS.IdleTimeout, c.cfg.WS.ReadFrameTimeout
	}
	for _, d := range []time.Duration{w.zw.Timeout, c.cfg.BodyTimeout, c.cfg.RateWindow, w.ka.interval, w.ka.timeout, idle, frame} {
		if d > 0 {
			tick = min(tick, d/4)
		}
	}
	w.tick = max(tick, 10*time.Millisecond)
	w.t = time.AfterFunc(w.tick, c.onWatch)
	if c.cfg.Drain != nil {
		w.stopDrain = context.AfterFunc(c.cfg.Drain, func() {
			afterSpread(c.cfg.DrainSpread, func() {
				w.mu.Lock()
				if !w.done { // (the spread's timer may fire after the end)
					c.goAwayTwoStep()
				}
				w.mu.Unlock()
				c.rewatch() // the drain's PING is timed
			})
		})
	}
}

// stopWatch stops the watcher for good; a callback under way finishes
// first.
func (c *H2Conn) stopWatch() {
	w := &c.watch
	if w.stopDrain != nil {
		w.stopDrain()
	}
	w.mu.Lock()
	w.done = true
	w.t.Stop()
	w.mu.Unlock()
}

// rewatch puts a sparse watcher back on its tick: a stream opened, or a
// drain began.
func (c *H2Conn) rewatch() {
	w := &c.watch
	w.mu.Lock()
	if w.sparse && !w.done {
		w.sparse = false
		w.t.Reset(w.tick)
	}
	w.mu.Unlock()
}

// onWatch is the timer's callback: one pass of the rules, then the timer
// is armed again for when the next is due.
func (c *H2Conn) onWatch() {
	defer c.recoverConn()
	w := &c.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	now := time.Now()
	if !c.watchPass(w, now) {
		w.done = true
		return
	}
	c.mu.Lock()
	quiet := c.active == 0 && c.drainPing.IsZero()
	c.mu.Unlock()
	if !quiet {
		w.sparse = false
		w.t.Reset(w.tick)
		return
	}
	// (A stream that opens from now on finds sparse set: rewatch waits
	// for this callback's lock.)
	w.sparse = true
	if due, ok := c.keepAliveDue(&w.ka); ok {
		w.t.Reset(max(due.Sub(now), 10*time.Millisecond))
	}
}

// watchPass runs the rules once at now; false means the connection is
// being closed.
func (c *H2Conn) watchPass(w *h2Watch, now time.Time) bool {
	c.drainPingDue(now)
	c.slowBodies(now)
	if c.cfg.WS != nil {
		c.expireTunnels(now)
	}
	if !c.keepAlive(&w.ka, now) {
		return false
	}
	if w.zw.Timeout <= 0 {
		return true
	}
	stalled := c.out.Stalled(now.Add(-w.zw.Timeout))
	for _, id := range stalled {
		guard.H2ZeroWindow.Inc()
		c.out.Reset(id, h2.ErrCodeFlowControl)
		if s := c.lookup(id); s != nil {
			c.abort(s, frames.CodeTimeout)
		}
	}
	if len(stalled) > 0 {
		c.goAwayError(h2.ErrCodeEnhanceYourCalm, "h2_zero_window_stall")
		return false
	}
	return true
}
