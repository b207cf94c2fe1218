package pipeline

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/passthrough"
	"github.com/expressgateway/expressgateway/stages/route"
)

// ptListener is a QUIC passthrough (Mode A) listener: its config, its pool
// (a named pool follows reloads; a bare backends list is its own maglev
// pool) and, once open, its socket and datapath.
type ptListener struct {
	cfg  *conf.PassthroughListener
	pool atomic.Pointer[route.Pool]
	log  atomic.Pointer[streamLog] // one line per flow; nil: off
	l    *passthrough.Listener
}

// newPassthroughs builds the passthrough listeners of cfg (New).
func (g *Gateway) newPassthroughs(cfg *conf.Config) ([]*ptListener, error) {
	var out []*ptListener
	for _, lc := range cfg.Passthrough.All() {
		p := &ptListener{cfg: lc}
		p.log.Store(g.newStreamLog(cfg))
		if err := g.passthroughPool(p, cfg); err != nil {
			return nil, fmt.Errorf("passthrough listener %s: %w", lc.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// passthroughPool points p at its pool in the gateway's current pools.
func (g *Gateway) passthroughPool(p *ptListener, cfg *conf.Config) error {
	lc := p.cfg
	if lc.Pool != "" {
		p.pool.Store(g.pools[lc.Pool])
		return nil
	}
	if p.pool.Load() != nil {
		return nil // a bare list is restart-only: the pool stays
	}
	pc := conf.Pool{Name: poolName(lc.Name), Algorithm: conf.DefaultPassthroughAlgorithm}
	for _, a := range lc.Backends {
		pc.Backends = append(pc.Backends, conf.Backend{Address: a, Protocol: "udp"})
	}
	pool, err := newPool(pc, "passthrough."+lc.Name, g.upstreams, nil, nil) // restart-only: no DNS following
	if err != nil {
		return err
	}
	p.pool.Store(pool)
	return nil
}

// openPassthrough binds p's socket and prepares its datapath (Start).
func (g *Gateway) openPassthrough(p *ptListener) error {
	lc := p.cfg
	ua, err := net.ResolveUDPAddr("udp", lc.BindAddr)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	bh, err := passthrough.ParseBackhaul(lc.Backhaul)
	if err != nil {
		conn.Close()
		return err
	}
	o := passthrough.Options{
		Name:                lc.Name,
		Backhaul:            bh,
		OnFlowEnd:           func(e stages.FlowEnd) { p.log.Load().flow(lc.Name, "quic", e) },
		Pool:                func() *route.Pool { return p.pool.Load() },
		MaxFlows:            lc.MaxQUICConnections,
		MaxFlowsPerIP:       lc.MaxConnectionsPerIP,
		IdleTimeout:         ms(*lc.FlowIdleTimeoutMs),
		Backlog:             lc.PerFlowBacklog,
		MinClientDCIDLen:    lc.MinClientDCIDLen,
		MaxDCIDLenRouted:    lc.MaxDCIDLenRouted,
		StrictSourceBinding: lc.StrictSourceBinding,
		AuditWindow:         ms(lc.AuditThrottleWindowSecs * 1000),
		InitialRate:         *lc.InitialRatePerIP,
		InitialBurst:        lc.InitialBurstPerIP,
		Log:                 g.log,
	}
	if *lc.MintRetry {
		k, err := conf.ReadRetryTokenKey(lc.RetrySecretPath)
		if err != nil {
			conn.Close()
			return fmt.Errorf("retry_secret_path: %w", err)
		}
		o.Retry = &passthrough.RetryOptions{Key: k, BackendDualStack: lc.RetryBackendDualStack, NewTokens: lc.RetryNewTokens}
	}
	for i := range lc.QUICLB {
		q := &lc.QUICLB[i]
		c, err := q.Config()
		if err != nil {
			conn.Close()
			return fmt.Errorf("quic_lb[%s]: %w", strconv.Itoa(i), err)
		}
		ids, err := q.ServerIDs()
		if err != nil {
			conn.Close()
			return fmt.Errorf("quic_lb[%s]: %w", strconv.Itoa(i), err)
		}
		o.QUICLB = append(o.QUICLB, passthrough.QUICLB{Config: c, ServerIDs: ids})
	}
	if p.l, err = passthrough.New(conn, o); err != nil {
		conn.Close()
		return err
	}
	return nil
}

// servePassthrough runs p until accepting stops (drain): like a udp
// listener, a passthrough has no request to finish.
func (g *Gateway) servePassthrough(ctx context.Context, p *ptListener) {
	g.wg.Go(func() {
		if err := p.l.Serve(ctx); err != nil {
			g.log.Error().Err(err).Str("listener", p.cfg.Name).Msg("passthrough stopped")
		}
	})
}

// repointPassthroughs gives passthrough listeners on named pools the
// pools a reload built (Reload, after the swap), and the reload's access
// log setting.
func (g *Gateway) repointPassthroughs(cfg *conf.Config) {
	for _, p := range g.passthrough {
		p.log.Store(g.newStreamLog(cfg))
		if p.cfg.Pool != "" {
			if np := g.pools[p.cfg.Pool]; np != nil {
				p.pool.Store(np)
			}
		}
	}
}

// PassthroughAddr returns the bound address of the passthrough listener
// named name (tests bind port 0).
func (g *Gateway) PassthroughAddr(name string) net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.passthrough {
		if p.cfg.Name == name && p.l != nil {
			return p.l.Addr()
		}
	}
	return nil
}
