package health

import (
	"context"
	"errors"
	"time"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

var errStopped = errors.New("health: checker stopped")

// outlier is passive outlier detection, Envoy's model: consecutive 5xx,
// consecutive gateway errors (502, 503, 504, or an exchange that failed) or
// consecutive connect failures eject a backend for base_ejection_ms × the
// number of its recent ejections (capped at max_ejection_ms); at most
// max_ejected_percent of the pool (but always one backend) is out at once.
// An ejection is forgiven for every base_ejection_ms the backend then
// stays in; all of this is kept as timestamps, with no timer per failure:
// the checker's sweep returns backends whose time is up.
type outlier struct {
	c5xx, cGateway, cConnect int32
	base, maxEject           time.Duration
	maxPercent               int
	interval                 time.Duration
	limit                    int // backends that may be ejected at once
}

func newOutlier(o *conf.Outlier, n int) *outlier {
	out := &outlier{
		c5xx:       int32(o.Consecutive5xx),
		cGateway:   int32(o.ConsecutiveGatewayErrors),
		cConnect:   int32(o.ConsecutiveConnectFailures),
		base:       time.Duration(o.BaseEjectionMs) * time.Millisecond,
		maxEject:   time.Duration(o.MaxEjectionMs) * time.Millisecond,
		maxPercent: o.MaxEjectedPercent,
		interval:   time.Duration(o.IntervalMs) * time.Millisecond,
	}
	if out.interval <= 0 {
		out.interval = conf.DefaultOutlierIntervalMs * time.Millisecond
	}
	if out.maxPercent > 0 {
		out.limit = max(1, n*out.maxPercent/100)
	}
	return out
}

// Observe implements route.Observer: it counts consecutive failures of b
// and ejects it past a threshold. It runs on the request path: atomics
// only, unless it ejects.
func (c *Checker) Observe(b *route.Backend, o route.Outcome) {
	st := c.bs[b.Index()]
	out := c.out
	var de *route.DialError
	switch {
	case o.Err != nil && errors.Is(o.Err, context.Canceled):
		return // the client left: no verdict on the backend
	case o.Err != nil && errors.As(o.Err, &de):
		c.fail(st, st.cConnect.Add(1) >= out.cConnect && out.cConnect > 0,
			st.cGateway.Add(1) >= out.cGateway && out.cGateway > 0,
			st.c5xx.Add(1) >= out.c5xx && out.c5xx > 0)
	case o.Err != nil || o.Status == 502 || o.Status == 503 || o.Status == 504:
		st.cConnect.Store(0)
		c.fail(st, false,
			st.cGateway.Add(1) >= out.cGateway && out.cGateway > 0,
			st.c5xx.Add(1) >= out.c5xx && out.c5xx > 0)
	case o.Status >= 500:
		st.cConnect.Store(0)
		st.cGateway.Store(0)
		c.fail(st, false, false, st.c5xx.Add(1) >= out.c5xx && out.c5xx > 0)
	case o.Status != 0:
		if st.c5xx.Load()|st.cGateway.Load()|st.cConnect.Load() != 0 {
			st.c5xx.Store(0)
			st.cGateway.Store(0)
			st.cConnect.Store(0)
		}
	}
}

// fail ejects st's backend if any threshold was reached.
func (c *Checker) fail(st *backendState, conn, gw, fivexx bool) {
	var why string
	switch {
	case !conn && !gw && !fivexx:
		return
	case conn:
		why = "consecutive connect failures"
	case gw:
		why = "consecutive gateway errors"
	default:
		why = "consecutive 5xx"
	}
	c.eject(st, time.Now(), why)
}

// eject takes st's backend out, for longer the more recently it was out.
func (c *Checker) eject(st *backendState, now time.Time, why string) {
	out := c.out
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.b.Ejected() || out.limit == 0 {
		return
	}
	// Forgive one past ejection per base period spent in the pool since
	// the last return.
	n := st.ejections
	if st.lastReturn != 0 && out.base > 0 {
		n -= int(time.Duration(now.UnixNano()-st.lastReturn) / out.base)
	}
	n = max(n, 0) + 1
	d := min(out.base*time.Duration(n), out.maxEject)
	if !c.pool.TryEject(st.b, out.limit) {
		c.log.Debug().Str("backend", st.b.Address).Str("reason", why).Msg("health: not ejected, max_ejected_percent reached")
		return
	}
	st.ejections = n
	st.ejectedUntil = now.Add(d).UnixNano()
	st.c5xx.Store(0)
	st.cGateway.Store(0)
	st.cConnect.Store(0)
	st.m.ejections.Inc()
	st.m.setUp(false)
	c.log.Warn().Str("backend", st.b.Address).Str("reason", why).Int("ejections", n).Dur("for", d).Msg("health: backend ejected")
}

// sweep returns every backend whose ejection time is up.
func (c *Checker) sweep(now time.Time) {
	for _, st := range c.bs {
		if !st.b.Ejected() {
			continue
		}
		st.mu.Lock()
		if now.UnixNano() >= st.ejectedUntil && c.pool.Uneject(st.b) {
			st.lastReturn = now.UnixNano()
			st.m.setUp(st.b.Healthy())
			c.log.Info().Str("backend", st.b.Address).Msg("health: backend returned from ejection")
		}
		st.mu.Unlock()
	}
}
