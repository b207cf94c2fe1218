package pipeline

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// The XDP fast path of a gateway: loaded, filled and attached by Start
// before any listener opens, refilled by Reload (bpf.Program.Apply swaps
// services, Maglev tables and the deny list without detaching), refilled
// when a backend of a pool feeding a service changes health (xdp_health.go:
// Maglev drains it, as the userspace relays skip it), detached
// at the end of Drain so established XDP flows keep flowing while the
// userspace listeners drain.
//
// When XDP cannot run here (no privilege, a kernel or driver that refuses,
// a missing interface), the gateway logs why and serves with its userspace
// listeners only, unless xdp_mode = "native" was demanded: then Start
// fails with the reason.

// nextHopTimeout bounds resolving one backend's next-hop MAC.
const nextHopTimeout = 2 * time.Second

// xdpHealthDebounce is how long the health watcher (xdp_health.go) waits
// after a backend's health flips before it rebuilds the tables, so that a
// burst of flips (a whole rack failing its checks in one round) costs one
// Apply.
const xdpHealthDebounce = 50 * time.Millisecond

// xdpProgram is the attached program of the running gateway, for the
// metrics writer (one per process, like the metrics themselves).
var (
	xdpProgram     atomic.Pointer[bpf.Program]
	xdpMetricsOnce sync.Once
)

// xdpMode maps the config's xdp_mode to an attach mode: skb is generic
// (conf refuses hw, offload).
func xdpMode(s string) bpf.Mode {
	switch s {
	case "native":
		return bpf.ModeNative
	case "generic", "skb":
		return bpf.ModeGeneric
	}
	return bpf.ModeAuto
}

// startXDP loads the program, fills its tables from cfg and attaches it.
// It returns an error only when the boot must fail.
func (g *Gateway) startXDP(cfg *conf.Config) error {
	rt := cfg.Runtime
	if !rt.XDPEnabled {
		return nil
	}
	registerXDPMetrics()
	mode := xdpMode(rt.XDPMode)
	fallback := func(err error) error {
		if bpf.IsUnavailable(err) && mode != bpf.ModeNative {
			g.log.Warn().Err(err).Str("interface", rt.XDPInterface).Str("xdp_mode", rt.XDPMode).
				Msg("xdp unavailable: the userspace L4 listeners serve instead")
			return nil
		}
		return fmt.Errorf("xdp on %s (xdp_mode = %q): %w", rt.XDPInterface, rt.XDPMode, err)
	}
	prog, err := bpf.Load(bpf.Options{})
	if err != nil {
		return fallback(err)
	}
	macs := map[netip.Addr]net.HardwareAddr{}
	st, fed, err := xdpState(cfg, g.pools, macs)
	if err == nil {
		err = prog.Apply(st)
	}
	if err != nil {
		prog.Close()
		return fmt.Errorf("xdp: %w", err)
	}
	if err := prog.Attach(rt.XDPInterface, mode); err != nil {
		prog.Close()
		return fallback(err)
	}
	g.xdp = prog
	xdpProgram.Store(prog)
	g.xdpWatch = startXDPWatch(prog, cfg, g.pools, macs, fed, g.log)
	attached, _ := prog.Mode()
	g.log.Info().Str("interface", rt.XDPInterface).Str("mode", attached.String()).
		Int("services", len(st.Services)).Int("deny", len(st.Deny)).Msg("xdp attached")
	return nil
}

// reloadXDP applies next's [xdp] to the attached program; nothing changes
// on error. Changes of the [runtime] xdp keys need a restart.
func (g *Gateway) reloadXDP(next *conf.Config) error {
	old, cur := g.cfg.Runtime, next.Runtime
	if old.XDPEnabled != cur.XDPEnabled || old.XDPInterface != cur.XDPInterface || old.XDPMode != cur.XDPMode {
		reloadRestart.Inc()
		g.log.Warn().Str("key", "runtime.xdp_*").Str("reason", "attaching or detaching XDP needs a restart").
			Msg("config change needs a restart; not applied")
	}
	if g.xdp == nil {
		return nil
	}
	// Serialised with the health watcher: it must not apply the old
	// config's tables over the new ones.
	w := g.xdpWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	macs := map[netip.Addr]net.HardwareAddr{}
	st, fed, err := xdpState(next, g.pools, macs)
	if err == nil {
		err = g.xdp.Apply(st)
	}
	if err != nil {
		return fmt.Errorf("xdp: %w", err)
	}
	w.swap(next, g.pools, macs, fed)
	return nil
}

// stopXDP detaches the program and closes its maps.
func (g *Gateway) stopXDP() {
	if g.xdp == nil {
		return
	}
	// The watcher first: it may be applying, and must not outlive the maps.
	g.xdpWatch.stop()
	g.xdpWatch = nil
	xdpProgram.CompareAndSwap(g.xdp, nil)
	if err := g.xdp.Close(); err != nil {
		g.log.Warn().Err(err).Msg("xdp detach")
	} else {
		g.log.Info().Msg("xdp detached")
	}
	g.xdp = nil
}

// xdpState turns the config into the kernel tables' content, and returns
// the pools whose backends' health it read. A backend of a service fed by
// a pool (pool = or a listener's pool) that is not Healthy gets weight 0:
// Maglev gives it no new flows while its established flows keep their
// conntrack entries, as the userspace relays would skip it in Pool.Pick.
// While the pool is in panic mode (too few healthy backends) every backend
// keeps its weight, again as Pool.Pick does. pools may be nil (no health).
//
// Next hops without [xdp].gateway_mac are resolved in the calling thread's
// network namespace unless macs (a cache, filled here) already holds them.
func xdpState(cfg *conf.Config, pools map[string]*route.Pool, macs map[netip.Addr]net.HardwareAddr) (bpf.State, []*route.Pool, error) {
	x := cfg.XDP
	st := bpf.State{
		NewFlowRate: uint32(cfg.Runtime.XDPNewFlowCapPerSecPerCPU),
		OverCap:     bpf.OverCapPass,
	}
	if x.OverCap == "drop" {
		st.OverCap = bpf.OverCapDrop
	}
	if x.SourceV4 != "" {
		st.SourceV4, _ = netip.ParseAddr(x.SourceV4)
	}
	if x.SourceV6 != "" {
		st.SourceV6, _ = netip.ParseAddr(x.SourceV6)
	}
	if x.GatewayMAC != "" {
		st.GatewayMAC, _ = net.ParseMAC(x.GatewayMAC)
	}
	for _, d := range x.Deny {
		if p, err := conf.ParseCIDR(d); err == nil {
			st.Deny = append(st.Deny, p)
		}
	}
	// Every TCP listener of the gateway counts toward the SYN rate cap.
	seen := map[bpf.Listener]bool{}
	for _, l := range cfg.Listeners {
		if l.Protocol == "udp" || l.Protocol == "quic" {
			continue
		}
		ap, err := netip.ParseAddrPort(l.Address)
		if err != nil {
			if _, port, err2 := net.SplitHostPort(l.Address); err2 == nil {
				ap, err = netip.ParseAddrPort("0.0.0.0:" + port)
			}
		}
		if err != nil || ap.Port() == 0 {
			continue
		}
		gl := bpf.Listener{Port: ap.Port(), Proto: bpf.TCP}
		if !seen[gl] {
			seen[gl] = true
			st.Guarded = append(st.Guarded, gl)
		}
	}
	var fed []*route.Pool
	for _, s := range x.Services {
		svc, backends, poolName, err := xdpService(cfg, s)
		if err != nil {
			return bpf.State{}, nil, err
		}
		// The route pool built from the same [[pools]] entry lists the
		// same backends in the same order.
		var health []*route.Backend
		panicking := false
		if p := pools[poolName]; poolName != "" && p != nil && len(p.Backends()) == len(backends) {
			health, panicking = p.Backends(), p.Panicking()
			if !slices.Contains(fed, p) {
				fed = append(fed, p)
			}
		}
		for i, b := range backends {
			ap, err := netip.ParseAddrPort(b.Address)
			if err != nil {
				return bpf.State{}, nil, fmt.Errorf("service %s: backend %q: %w", s.Name, b.Address, err)
			}
			addr := ap.Addr().Unmap()
			be := bpf.Backend{Name: addr.String(), Addr: addr, Weight: uint32(b.Weight)}
			if health != nil && !panicking && !health[i].Healthy() {
				be.Weight = 0 // drained: listed, so its pinned flows stay
			}
			if st.GatewayMAC == nil {
				mac, ok := macs[addr]
				if !ok {
					if mac, err = bpf.ResolveNextHop(addr, nextHopTimeout); err != nil {
						return bpf.State{}, nil, fmt.Errorf("service %s: %w (set [xdp].gateway_mac to skip resolution)", s.Name, err)
					}
					macs[addr] = mac
				}
				be.MAC = mac
			}
			svc.Backends = append(svc.Backends, be)
		}
		st.Services = append(st.Services, svc)
	}
	return st, fed, nil
}

// xdpService resolves one [[xdp.services]] entry (explicit, pool or
// listener) to its VIP, port, protocol and backends, and the name of the
// [[pools]] entry those come from ("" for backends listed in place).
func xdpService(cfg *conf.Config, s conf.XDPService) (bpf.Service, []conf.Backend, string, error) {
	poolBackends := func(name string) []conf.Backend {
		for _, p := range cfg.Pools {
			if p.Name == name {
				return p.Backends
			}
		}
		return nil
	}
	vip, port, proto, backends, pool := s.VIP, s.Port, s.Protocol, s.Backends, s.Pool
	if pool != "" {
		backends = poolBackends(pool)
	}
	if s.Listener != "" {
		for _, l := range cfg.Listeners {
			if l.Name != s.Listener {
				continue
			}
			ap, err := netip.ParseAddrPort(l.Address)
			if err != nil {
				return bpf.Service{}, nil, "", fmt.Errorf("service %s: listener address %q: %w", s.Name, l.Address, err)
			}
			vip, port, proto, backends, pool = ap.Addr().String(), int(ap.Port()), l.Protocol, l.Backends, l.Pool
			if l.Pool != "" {
				backends = poolBackends(l.Pool)
			}
		}
	}
	a, err := netip.ParseAddr(vip)
	if err != nil {
		return bpf.Service{}, nil, "", fmt.Errorf("service %s: vip %q: %w", s.Name, vip, err)
	}
	svc := bpf.Service{VIP: a.Unmap(), Port: uint16(port), Proto: bpf.TCP}
	if proto == "udp" {
		svc.Proto = bpf.UDP
	}
	return svc, backends, pool, nil
}

// registerXDPMetrics adds xdp_packets_total{action}, xdp_bytes_total{action},
// the per-reason series and the Maglev table fingerprints to every scrape: one read of the per-CPU
// counters per scrape, nothing per packet.
func registerXDPMetrics() {
	xdpMetricsOnce.Do(func() {
		metrics.RegisterMetricsWriter(func(w io.Writer) {
			p := xdpProgram.Load()
			if p == nil {
				metrics.WriteGaugeUint64(w, "expressgateway_xdp_attached", 0)
				return
			}
			st, err := p.Stats()
			if err != nil {
				return
			}
			metrics.WriteGaugeUint64(w, "expressgateway_xdp_attached", 1)
			writeXDPStats(w, &st)
			writeXDPTableHashes(w, p.TableHashes())
		})
	})
}
