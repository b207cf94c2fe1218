package health

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// jitterFraction of the interval delays each probe at random, so the
// probes of many backends (and many gateways) do not fire in step.
const jitterFraction = 10

// Checker runs a pool's active checks and outlier detection. One goroutine
// (run) owns the schedule; each probe runs in its own goroutine, at most
// one per backend at a time; Stop waits for all of them.
type Checker struct {
	pool   *route.Pool
	log    zerolog.Logger
	hc     *conf.HealthCheck
	prober Prober
	out    *outlier // nil without [pools.outlier]
	bs     []*backendState
	set    *metrics.Set // where bs's series are

	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

// backendState is the checker's view of one backend.
type backendState struct {
	b        *route.Backend
	m        backendMetrics
	inFlight atomic.Bool
	// rise and fall count consecutive passes and failures; only the one
	// probe in flight touches them (inFlight orders successive probes).
	rise, fall int

	// Outlier detection (outlier.go).
	c5xx, cGateway, cConnect atomic.Int32
	mu                       sync.Mutex // guards the ejection record below
	ejections                int        // ejections not yet forgiven
	ejectedUntil             int64      // unix nanos
	lastReturn               int64      // unix nanos of the last return from ejection
}

// Options are New's runtime inputs beyond the config.
type Options struct {
	// Metrics is where health series go; nil means metrics.GetDefaultSet.
	Metrics *metrics.Set
	// Prober replaces the one built from health_check (tests, or a
	// transport-specific prober).
	Prober Prober
}

// New builds the checker of pool from its validated config (the same
// conf.Pool NewPool got). Without health_check and outlier sections it
// does nothing, cheaply. With outlier it installs itself as the pool's
// route.Observer.
func New(pool *route.Pool, cfg conf.Pool, log zerolog.Logger, o Options) (*Checker, error) {
	set := o.Metrics
	if set == nil {
		set = metrics.GetDefaultSet()
	}
	c := &Checker{pool: pool, hc: cfg.HealthCheck, log: log.With().Str("pool", pool.Name()).Logger(), set: set}
	for _, b := range pool.Backends() {
		st := &backendState{b: b, m: newBackendMetrics(set, pool.Name(), b.Address)}
		st.m.up.Set(boolFloat(b.Healthy()))
		c.bs = append(c.bs, st)
	}
	if c.hc != nil {
		c.prober = o.Prober
		if c.prober == nil {
			var err error
			if c.prober, err = newProber(c.hc, cfg.Backends); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Outlier != nil {
		c.out = newOutlier(cfg.Outlier, len(c.bs))
		pool.SetObserver(c)
	}
	return c, nil
}

// Start launches the checker goroutine; ctx (or Stop) ends it.
func (c *Checker) Start(ctx context.Context) {
	if c.hc == nil && c.out == nil {
		return
	}
	ctx, c.cancel = context.WithCancelCause(ctx)
	c.wg.Go(func() { c.run(ctx) })
}

// Stop ends the checker, waits for it and for every probe in flight, and
// detaches outlier detection from the pool.
func (c *Checker) Stop() {
	if c.cancel != nil {
		c.cancel(errStopped)
	}
	c.wg.Wait()
	if c.out != nil {
		c.pool.SetObserver(nil)
	}
	if c.prober != nil {
		c.prober.Close()
	}
}

// run owns the schedule: a probe round every interval_ms (the first at
// once), an ejection review every outlier interval_ms.
func (c *Checker) run(ctx context.Context) {
	var probeC, sweepC <-chan time.Time
	if c.hc != nil {
		t := time.NewTicker(time.Duration(c.hc.IntervalMs) * time.Millisecond)
		defer t.Stop()
		probeC = t.C
		c.probeRound(ctx)
	}
	if c.out != nil {
		t := time.NewTicker(c.out.interval)
		defer t.Stop()
		sweepC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-probeC:
			c.probeRound(ctx)
		case <-sweepC:
			c.sweep(time.Now())
		}
	}
}

// probeRound starts a probe for every backend that has none in flight.
func (c *Checker) probeRound(ctx context.Context) {
	interval := time.Duration(c.hc.IntervalMs) * time.Millisecond
	for _, st := range c.bs {
		if !st.inFlight.CompareAndSwap(false, true) {
			continue // still probing since last round: no pile-up
		}
		delay := time.Duration(rand.Int64N(int64(interval)/jitterFraction + 1))
		c.wg.Go(func() { c.probeLoop(ctx, st, delay) })
	}
}

// probeLoop runs one probe of st after delay and applies its verdict.
func (c *Checker) probeLoop(ctx context.Context, st *backendState, delay time.Duration) {
	defer st.inFlight.Store(false)
	t := time.NewTimer(delay)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-t.C:
	}
	pctx, cancel := context.WithTimeout(ctx, time.Duration(c.hc.TimeoutMs)*time.Millisecond)
	start := time.Now()
	err := c.prober.Probe(pctx, st.b)
	cancel()
	st.m.duration.UpdateDuration(start)
	if ctx.Err() != nil {
		return // stopping: a cut-short probe says nothing of the backend
	}
	c.verdict(st, err)
}

// verdict applies rise/fall to one probe result.
func (c *Checker) verdict(st *backendState, err error) {
	if st.b.FirstProbe() && err != nil && !st.b.Down() {
		// Never judged: a backend that fails its first check is out at
		// once rather than serving until fall checks fail.
		st.rise, st.fall = 0, 0
		if c.pool.SetDown(st.b, true) {
			st.m.setUp(false)
			c.log.Warn().Str("backend", st.b.Address).Err(err).Msg("health: backend down at its first check")
		}
		return
	}
	if err == nil {
		st.fall = 0
		if st.b.Down() {
			if st.rise++; st.rise >= c.hc.Rise {
				st.rise = 0
				if c.pool.SetDown(st.b, false) {
					st.m.setUp(st.b.Healthy())
					c.log.Info().Str("backend", st.b.Address).Int("rise", c.hc.Rise).Msg("health: backend up")
				}
			}
		}
		return
	}
	st.rise = 0
	if !st.b.Down() {
		if st.fall++; st.fall >= c.hc.Fall {
			st.fall = 0
			if c.pool.SetDown(st.b, true) {
				st.m.setUp(false)
				c.log.Warn().Str("backend", st.b.Address).Int("fall", c.hc.Fall).Err(err).Msg("health: backend down")
			}
		}
	} else {
		c.log.Debug().Str("backend", st.b.Address).Err(err).Msg("health: probe failed")
	}
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
