package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/accept"
)

// A listener's life: open binds its socket, serve runs its accept loop,
// drainListener stops accepting, tells its connections to finish (each at
// its own moment within the jitter), and cuts those left when its budget
// is spent. The gateway drains every listener so on SIGTERM; a reload
// drains the listeners it removes and opens the ones it adds.

var drainTimeouts = metrics.NewCounter(`expressgateway_drain_timeout_total`)

// lifecycle is the part of a listener that starts and ends it.
type lifecycle struct {
	// drainCtx is done once the listener starts draining.
	drainCtx context.Context
	drain    context.CancelFunc
	// connCtx is what the listener's connections run under; kill cuts them
	// once the drain budget is spent.
	connCtx context.Context
	kill    context.CancelFunc

	mu   sync.Mutex
	stop context.CancelFunc // ends the accept loop; nil until served
	done chan struct{}      // closed when the serve goroutine returns: every connection ended
}

// newListener returns a listener of lc that is not configured or bound.
func newListener(lc conf.Listener) *listener {
	l := &listener{cfg: lc}
	l.drainCtx, l.drain = context.WithCancel(context.Background())
	l.connCtx, l.kill = context.WithCancel(context.Background())
	return l
}

// open binds l's socket.
func (g *Gateway) open(ctx context.Context, l *listener) error {
	switch l.cfg.Protocol {
	case "quic":
		return g.listenQUIC(l)
	case "udp":
		return g.listenUDP(l)
	}
	ln, err := accept.Listen(ctx, l.cfg.Address)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// closeSocket releases a bound listener that never served.
func (l *listener) closeSocket() {
	if l.relay != nil {
		l.relay.Close()
	}
	switch {
	case l.ln != nil:
		l.ln.Close()
	case l.quic != nil:
		l.quic.Close()
	case l.udp != nil:
		l.udp.conn.Close()
	}
}

// run starts fn as l's serve goroutine under its own accept context.
func (g *Gateway) run(l *listener, fn func(ctx context.Context)) {
	ctx, stop := context.WithCancel(g.acceptCtx)
	done := make(chan struct{})
	l.mu.Lock()
	l.stop, l.done = stop, done
	l.mu.Unlock()
	g.wg.Go(func() {
		defer close(done)
		fn(ctx)
	})
}

// stopAccepting closes l's socket (a TCP port is free when it returns, so
// a listener added in its place can bind) and returns its serve
// goroutine's done channel, nil if it never served.
func (l *listener) stopAccepting() <-chan struct{} {
	l.mu.Lock()
	stop, done := l.stop, l.done
	l.mu.Unlock()
	if stop != nil {
		stop()
	}
	if l.ln != nil {
		l.ln.Close()
	}
	return done
}

// drainListener stops l accepting, signals its connections to finish (H1:
// the response in flight carries Connection: close, idle connections
// close; H2 and H3: GOAWAY), idle closes and GOAWAYs each at a random
// moment in [0, jitter), and after timeout cuts whatever is left. It
// returns when every connection of l has ended.
func (g *Gateway) drainListener(l *listener, timeout, jitter time.Duration) {
	l.jitter.Store(int64(jitter))
	done := l.stopAccepting()
	l.drain()
	defer l.kill()
	if done == nil {
		l.closeSocket()
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		drainTimeouts.Inc()
		g.log.Warn().Str("listener", l.cfg.Name).Dur("timeout", timeout).Int64("connections", l.conns.Load()).
			Msg("drain timeout: closing remaining connections")
		l.kill()
		<-done
	}
}

// connDrain is the drain signal of one new HTTP/3 connection of l: the
// listener's own when it has no jitter, else a context done at a random
// moment in [0, jitter) after the listener starts draining, so that
// clients spread their reconnects: the connection gets its GOAWAY then
// (the H1 and H2 fronts spread theirs themselves, drainSpread, holding no
// context of their own for it). release must be called when
// the connection ends; own reports whether the context is the
// connection's own.
func (l *listener) connDrain() (ctx context.Context, release func() bool, own bool) {
	if l.jitter.Load() <= 0 {
		return l.drainCtx, nil, false
	}
	// A context without a parent: cancelling it starts no goroutine.
	c, cancel := context.WithCancel(context.Background())
	release = context.AfterFunc(l.drainCtx, func() {
		// The jitter is read when the drain starts: the drain sets it from
		// the budget it runs under.
		j := time.Duration(l.jitter.Load())
		if j <= 0 {
			cancel()
			return
		}
		// A timer, not a goroutine: cancelling after the connection ended
		// is harmless.
		time.AfterFunc(rand.N(j), cancel)
	})
	return c, release, true
}

// drainSpread is the drain jitter as the HTTP fronts take it
// (DrainSpread), read when the drain starts: the drain sets it from the
// budget it runs under.
func (l *listener) drainSpread() time.Duration { return time.Duration(l.jitter.Load()) }

// drainSettings refreshes what l's drain runs under from cfg (boot and
// reload): the jitter new connections are given.
func (l *listener) drainSettings(cfg *conf.Config) {
	_, j := cfg.Runtime.Drain(&l.cfg, ms(cfg.Runtime.DrainTimeoutMs))
	l.jitter.Store(int64(j))
}

// retire drains a listener a reload removed, under its own budget, in the
// background; Drain waits for it.
func (g *Gateway) retire(l *listener, cfg *conf.Config) {
	d, j := cfg.Runtime.Drain(&l.cfg, ms(cfg.Runtime.DrainTimeoutMs))
	// Refuse new connections before Reload returns.
	l.stopAccepting()
	g.wg.Go(func() {
		g.drainListener(l, d, j)
		g.log.Info().Str("listener", l.cfg.Name).Str("address", l.cfg.Address).Msg("listener removed by reload: drained and closed")
	})
}

// errDraining refuses a reload once the gateway drains.
var errDraining = fmt.Errorf("pipeline: the gateway is draining; reload refused")
