package pipeline

import (
	"fmt"
	"reflect"

	"github.com/expressgateway/expressgateway/conf"
)

// Reload swaps what can change live (backends, pools, routes, timeouts,
// limits, forwarding settings) from a validated config, without dropping a
// connection: new connections and new requests see the new config, in-flight
// ones finish on the old. Changes that need a restart (listeners added,
// removed or re-bound, TLS paths, runtime caps, admin) are logged and
// counted, not applied. On error nothing changes.
func (g *Gateway) Reload(next *conf.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := next.Validate(); err != nil {
		reloadFailed.Inc()
		return err
	}
	// Backends present before and after keep their health and latency.
	pools, err := buildPools(next, g.pools)
	if err != nil {
		reloadFailed.Inc()
		return err
	}
	checkers, err := g.newCheckers(next, pools)
	if err != nil {
		reloadFailed.Inc()
		return err
	}
	byName := map[string]conf.Listener{}
	for _, lc := range next.Listeners {
		byName[lc.Name] = lc
	}
	restart := func(key, why string) {
		reloadRestart.Inc()
		g.log.Warn().Str("key", key).Str("reason", why).Msg("config change needs a restart; not applied")
	}
	// Build every listener's new state first, then swap, so a failure
	// leaves the running config whole.
	type staged struct {
		l  *listener
		lc conf.Listener
	}
	var plan []staged
	for _, l := range g.listeners {
		lc, ok := byName[l.cfg.Name]
		if !ok {
			restart("listeners."+l.cfg.Name, "listener removed")
			continue
		}
		delete(byName, l.cfg.Name)
		if lc.Address != l.cfg.Address || lc.Protocol != l.cfg.Protocol {
			restart("listeners."+l.cfg.Name, "address or protocol changed")
			continue
		}
		if !reflect.DeepEqual(lc.TLS, l.cfg.TLS) {
			restart("listeners."+l.cfg.Name+".tls", "certificate paths change on restart; SIGUSR1 re-reads the files")
		}
		plan = append(plan, staged{l, lc})
	}
	for name := range byName {
		restart("listeners."+name, "listener added")
	}
	if !reflect.DeepEqual(next.Observability, g.cfg.Observability) || !reflect.DeepEqual(next.Admin, g.cfg.Admin) {
		restart("observability/admin", "admin listener settings change on restart")
	}
	if next.Runtime.PerIPConnectionCap != g.cfg.Runtime.PerIPConnectionCap || next.Runtime.MaxInflightConnections != g.cfg.Runtime.MaxInflightConnections {
		restart("runtime", "connection caps change on restart")
	}
	// Build every listener's new state against the new pools, then swap:
	// a failure anywhere leaves the running config whole.
	prevPools := g.pools
	g.pools = pools
	shadows := make([]*listener, len(plan))
	for i, s := range plan {
		shadow := &listener{cfg: s.lc}
		shadow.tlsCfg.Store(s.l.tlsCfg.Load())
		if err := g.configure(shadow, next, prevPools); err != nil {
			g.pools = prevPools
			stopCheckers(checkers)
			reloadFailed.Inc()
			return fmt.Errorf("listener %s: %w", s.lc.Name, err)
		}
		shadows[i] = shadow
	}
	if err := g.reloadXDP(next); err != nil {
		g.pools = prevPools
		stopCheckers(checkers)
		reloadFailed.Inc()
		return err
	}
	for i, s := range plan {
		shadow := shadows[i]
		s.l.cfg.Routes, s.l.cfg.Backends, s.l.cfg.HTTP, s.l.cfg.Pool = s.lc.Routes, s.lc.Backends, s.lc.HTTP, s.lc.Pool
		s.l.pool.Store(shadow.pool.Load())
		s.l.h1cfg.Store(shadow.h1cfg.Load())
		if c := shadow.h2cfg.Load(); c != nil {
			s.l.h2cfg.Store(c)
		}
		if c := shadow.h3cfg.Load(); c != nil {
			s.l.h3cfg.Store(c) // new QUIC connections see it
		}
		if shadow.proxy != nil && s.l.proxy != nil {
			s.l.proxy.Table.Store(shadow.proxy.Table.Load())
			s.l.proxy.Settings.Store(shadow.proxy.Settings.Load())
		}
	}
	stopCheckers(g.checkers)
	g.checkers = checkers
	startCheckers(g.acceptCtx, checkers)
	g.cfg = next
	reloadOK.Inc()
	g.log.Info().Str("file", next.File).Msg("config reloaded")
	return nil
}

// CountReloadFailure counts a reload that failed before reaching Reload (a
// file that does not parse or validate).
func CountReloadFailure() { reloadFailed.Inc() }
