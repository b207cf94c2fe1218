package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expressgateway/expressgateway/conf"
)

// Reload applies a validated config without dropping a connection: new
// connections and new requests see it, in-flight ones finish under the
// old. Listeners are matched by name: one added is bound, one removed
// stops accepting and drains under its own budget, and one whose address
// or protocol changed is both. Keys that need a restart (conf's liveKeys
// say which) are listed in the one summary line and counted, not applied.
// On error nothing changes.
func (g *Gateway) Reload(next *conf.Config) (err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return errDraining
	}
	defer func() { reloaded(err == nil) }()
	if err := next.Validate(); err != nil {
		return err
	}
	// The access log file is opened anew on every reload, so that a
	// logrotate postrotate SIGHUP starts the new file.
	if err := g.access.reopen(next.Observability.AccessLogPath); err != nil {
		return err
	}
	return g.apply(next, false)
}

// followDNS rebuilds the pools, as a reload of the running config does,
// each time a DNS-named backend's set changes: members new to a pool
// start in slow start and are probed, members gone drain, and the
// balancers' tables are built over the new set.
func (g *Gateway) followDNS(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.dns.changed:
		}
		g.mu.Lock()
		if !g.stopped {
			if err := g.apply(g.cfg, true); err != nil {
				g.log.Error().Err(err).Msg("dns backends changed but the pools could not be rebuilt; the previous ones stay")
			}
		}
		g.mu.Unlock()
	}
}

// apply builds the data plane of next and swaps it in; dnsOnly is a
// rebuild of the running config for a DNS change, logged as such. The
// caller holds g.mu.
func (g *Gateway) apply(next *conf.Config, dnsOnly bool) (err error) {
	// Backends present before and after keep their health, latency and
	// pooled connections.
	bc := newBackendConns(g.upstreams)
	g.dns.begin()
	defer func() {
		if err != nil {
			g.dns.abort()
		}
	}()
	pools, err := buildPools(next, g.pools, bc, g.dns)
	if err != nil {
		return err
	}
	checkers, err := g.newCheckers(next, pools)
	if err != nil {
		return err
	}
	byName := map[string]conf.Listener{}
	for _, lc := range next.Listeners {
		byName[lc.Name] = lc
	}
	type staged struct {
		l, shadow *listener
		lc        conf.Listener
	}
	var kept []staged
	var removed, added []*listener
	for _, l := range g.listeners {
		lc, ok := byName[l.cfg.Name]
		// A quic listener turning Mode B (or back) changes its datapath: a
		// remove plus an add, as a protocol change is.
		if ok && lc.Address == l.cfg.Address && lc.Protocol == l.cfg.Protocol && lc.ModeB() == l.cfg.ModeB() {
			kept = append(kept, staged{l: l, lc: lc})
			delete(byName, l.cfg.Name)
			continue
		}
		removed = append(removed, l)
	}
	for _, lc := range next.Listeners {
		if _, ok := byName[lc.Name]; ok {
			added = append(added, newListener(lc))
		}
	}
	if err := udpClash(added, removed); err != nil {
		stopCheckers(checkers)
		return err
	}

	// Build every listener's new state against the new pools, bind the
	// added ones, then swap: a failure anywhere leaves the running config
	// whole.
	prevPools, prevTransports := g.pools, len(g.transports)
	g.pools = pools
	var bound []*listener
	fail := func(err error) error {
		for _, l := range bound {
			l.closeSocket()
		}
		g.pools = prevPools
		g.transports = g.transports[:prevTransports]
		stopCheckers(checkers)
		return err
	}
	for i := range kept {
		s := &kept[i]
		sh := &listener{cfg: s.lc}
		sh.drainCtx = s.l.drainCtx
		sh.tlsCfg.Store(s.l.tlsCfg.Load())
		if s.l.proxy != nil {
			sh.proxy = &Proxy{Listener: s.lc.Name, Log: g.log}
			sh.proxy.Settings.Store(s.l.proxy.Settings.Load())
		}
		if err := g.configure(sh, next, bc); err != nil {
			return fail(fmt.Errorf("listener %s: %w", s.lc.Name, err))
		}
		s.shadow = sh
	}
	for _, l := range added {
		if err := g.configure(l, next, bc); err != nil {
			return fail(fmt.Errorf("listener %s: %w", l.cfg.Name, err))
		}
	}
	for _, l := range added {
		if err := g.open(g.acceptCtx, l); err != nil {
			return fail(fmt.Errorf("listener %s: %w", l.cfg.Name, err))
		}
		bound = append(bound, l)
	}
	if err := g.reloadXDP(next); err != nil {
		return fail(err)
	}

	// Commit.
	prev := g.cfg
	before := g.seriesOwners()
	listeners := make([]*listener, 0, len(kept)+len(added))
	for _, s := range kept {
		l, sh := s.l, s.shadow
		l.cfg.Routes, l.cfg.Backends, l.cfg.HTTP, l.cfg.Pool = s.lc.Routes, s.lc.Backends, s.lc.HTTP, s.lc.Pool
		l.cfg.H2, l.cfg.AltSvc = s.lc.H2, s.lc.AltSvc
		l.cfg.DrainTimeoutMs, l.cfg.DrainJitterMs = s.lc.DrainTimeoutMs, s.lc.DrainJitterMs
		l.pool.Store(sh.pool.Load())
		l.streamLog.Store(sh.streamLog.Load())
		l.connect.Store(sh.connect.Load())
		l.jitter.Store(sh.jitter.Load())
		// The fronts' drain spread is the kept listener's jitter, which its
		// drain sets, not the shadow's (the shadow never serves, so its
		// configs are still unshared here).
		if c := sh.h1cfg.Load(); c != nil {
			c.DrainSpread = l.drainSpread
		}
		l.h1cfg.Store(sh.h1cfg.Load())
		if c := sh.h2cfg.Load(); c != nil {
			c.DrainSpread = l.drainSpread
			l.h2cfg.Store(c)
		}
		if c := sh.h3cfg.Load(); c != nil {
			l.h3cfg.Store(c)
		}
		if sh.proxy != nil && l.proxy != nil {
			l.proxy.Table.Store(sh.proxy.Table.Load())
			l.proxy.Settings.Store(sh.proxy.Settings.Load())
		}
		if l.quic != nil {
			l.quic.SetLive(quicLive(s.lc))
		}
		listeners = append(listeners, l)
	}
	g.listeners = append(listeners, added...)
	g.repointPassthroughs(next)
	for _, l := range added {
		g.serve(l)
	}
	for _, l := range removed {
		g.retire(l, prev)
	}
	stopCheckers(g.checkers)
	g.checkers = checkers
	startCheckers(g.acceptCtx, checkers)
	bc.closeDropped()
	g.upstreams = bc
	unregisterGone(before, g.seriesOwners())
	g.cfg = next
	g.running.Store(next)
	g.publish()
	g.dns.commit()
	if dnsOnly {
		g.log.Info().Strs("pools", slices.Sorted(maps.Keys(pools))).Msg("pools rebuilt for a dns change")
		return nil
	}
	g.logReload(next, conf.Diff(prev, next), added, removed)
	return nil
}

// udpClash refuses a reload that adds a udp or quic listener on the
// address of one it removes: the removed one keeps its socket while its
// connections drain (QUIC connections live on it), and two UDP sockets
// cannot share an address without mixing their flows.
func udpClash(added, removed []*listener) error {
	for _, a := range added {
		if !udpProto(a.cfg.Protocol) || strings.HasSuffix(a.cfg.Address, ":0") {
			continue
		}
		for _, r := range removed {
			if udpProto(r.cfg.Protocol) && r.cfg.Address == a.cfg.Address {
				return fmt.Errorf("listener %s: udp address %s is held by listener %s until it drains; remove %s in one reload and add %s in the next",
					a.cfg.Name, a.cfg.Address, r.cfg.Name, r.cfg.Name, a.cfg.Name)
			}
		}
	}
	return nil
}

func udpProto(p string) bool { return p == "udp" || p == "quic" }

// logReload writes the one line a reload logs: what it added, removed and
// changed, and the changes it did not apply because they need a restart.
func (g *Gateway) logReload(next *conf.Config, changes []conf.Change, added, removed []*listener) {
	var live, restart, pools []string
	for _, c := range changes {
		switch {
		case !c.Live:
			restart = append(restart, c.Path)
		case strings.HasPrefix(c.Path, "pools["):
			pools = append(pools, c.Path)
		default:
			live = append(live, c.Path)
		}
	}
	names := func(ls []*listener) []string {
		out := []string{}
		for _, l := range ls {
			out = append(out, l.cfg.Name+" "+l.cfg.Protocol+"://"+l.cfg.Address)
		}
		return out
	}
	reloadRestart.Add(len(restart))
	e := g.log.Info()
	msg := "config reloaded"
	if len(restart) > 0 {
		e = g.log.Warn()
		msg = "config reloaded, except changes that need a restart"
	}
	e.Str("file", next.File).Strs("listeners_added", names(added)).Strs("listeners_removed", names(removed)).
		Strs("pools_changed", nonNil(pools)).Strs("applied", nonNil(live)).Strs("restart_required", nonNil(restart)).Msg(msg)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CountReloadFailure counts a reload that failed before reaching Reload (a
// file that does not parse or validate).
func CountReloadFailure() { reloaded(false) }
