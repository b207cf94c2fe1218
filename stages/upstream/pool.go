package upstream

import (
	"bufio"
	"net"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/stages/decode"
	"github.com/expressgateway/expressgateway/stages/route"
)

// pconn is a pooled backend connection with its read buffer, which
// persists across the requests it carries.
type pconn struct {
	conn    net.Conn
	src     *decode.Source
	bw      *bufio.Writer // request writes, kept across requests
	scratch []byte        // request head and chunk framing
	created time.Time
	idleAt  time.Time
	b       *route.Backend // told of the close: least_conn counts connections
	closed  bool
}

// close closes the connection and reports it to its backend's count once.
func (c *pconn) close() {
	c.conn.Close()
	if !c.closed && c.b != nil {
		c.closed = true
		c.b.ConnClosed()
	}
}

// connPool is one backend's idle HTTP/1.1 connections, newest last (LIFO
// keeps the warmest connection in use and lets old ones age out).
type connPool struct {
	mu     sync.Mutex
	idle   []*pconn
	closed bool // the backend left the config: connections are not kept
}

// get returns an idle connection, or nil. A connection idle long enough
// for the backend to have closed it is probed first (one non-blocking
// read); one used within recentIdle is trusted when the request is
// retryable, since a stale-connection failure then costs a retry, not an
// error, and the probe costs a syscall on every request.
func (p *connPool) get(now time.Time, o *Options, retryable bool) *pconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		idle := now.Sub(c.idleAt)
		if idle < o.IdleTimeout && now.Sub(c.created) < o.MaxAge && ((retryable && idle < recentIdle) || alive(c)) {
			return c
		}
		c.close()
	}
	return nil
}

func (p *connPool) put(c *pconn, now time.Time, o *Options) {
	if len(c.src.Buffered()) > 0 || now.Sub(c.created) >= o.MaxAge {
		// Bytes past the response end: the backend broke framing. Never reuse.
		c.close()
		return
	}
	c.idleAt = now
	p.mu.Lock()
	if len(p.idle) >= o.MaxIdle || p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// recentIdle is how long a pooled connection is trusted without a probe.
const recentIdle = 500 * time.Millisecond

// alive reports whether an idle connection is still open: a read that
// would block means yes; EOF or data means the backend closed it (or broke
// framing). It costs one non-blocking read.
func alive(c *pconn) bool {
	var b [1]byte
	c.conn.SetReadDeadline(time.Unix(1, 0))
	n, err := c.conn.Read(b[:])
	c.conn.SetReadDeadline(time.Time{})
	if n > 0 {
		return false
	}
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// CloseIdle closes the backend's idle pooled connections and keeps none
// from now on (a reload removed the backend: those in flight finish, then
// close).
func (o *BackendOpts) CloseIdle() {
	p := o.pool
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}
