package pipeline

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Health of the XDP fast path (issue 5: a service behaves the same with or
// without XDP). The userspace L4 relays pick through route.Pool and skip a
// backend that health checks or outlier detection took out; the Maglev
// tables must drain it too. Each pool that feeds an XDP service gets a
// route health hook that kicks a channel of one (a burst of flips is one
// kick); one watcher goroutine per gateway answers a kick, after
// xdpHealthDebounce, by rebuilding the whole bpf.State from the running
// config and the pools' health and applying it. Apply rewrites only the
// rings that changed. Nothing runs per packet or per backend.

var (
	xdpHealthApplied = metrics.NewCounter(`expressgateway_xdp_health_apply_total{outcome="ok"}`)
	xdpHealthFailed  = metrics.NewCounter(`expressgateway_xdp_health_apply_total{outcome="failed"}`)
)

// xdpWatch re-applies the XDP tables when the health of a backend feeding
// a service flips. It is owned by the gateway: started by startXDP,
// stopped (and waited for) by stopXDP.
type xdpWatch struct {
	prog *bpf.Program
	log  zerolog.Logger
	kick chan struct{} // capacity 1: pending flips, coalesced
	quit chan struct{}
	wg   sync.WaitGroup // run

	// mu serialises Apply between the watcher and reloadXDP, and guards
	// what the next rebuild reads.
	mu    sync.Mutex
	cfg   *conf.Config
	pools map[string]*route.Pool
	macs  map[netip.Addr]net.HardwareAddr // next hops resolved by the last apply
	fed   []*route.Pool                   // pools whose hook points here

	applied atomic.Uint64 // health applies done, for tests
}

func startXDPWatch(prog *bpf.Program, cfg *conf.Config, pools map[string]*route.Pool, macs map[netip.Addr]net.HardwareAddr, fed []*route.Pool, log zerolog.Logger) *xdpWatch {
	w := &xdpWatch{
		prog: prog,
		log:  log,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
	}
	w.mu.Lock()
	w.swap(cfg, pools, macs, fed)
	w.mu.Unlock()
	w.wg.Go(w.run)
	return w
}

// swap points the watcher at a newly applied config: the hooks move from
// the pools it replaced to the ones now feeding a service. w.mu is held.
func (w *xdpWatch) swap(cfg *conf.Config, pools map[string]*route.Pool, macs map[netip.Addr]net.HardwareAddr, fed []*route.Pool) {
	for _, p := range w.fed {
		p.SetHealthHook(nil)
	}
	w.cfg, w.pools, w.macs, w.fed = cfg, pools, macs, fed
	for _, p := range fed {
		p.SetHealthHook(w.changed)
	}
}

// changed is the pools' health hook: it runs in the goroutine that flipped
// the state, so it only records that a rebuild is due.
func (w *xdpWatch) changed(*route.Pool) {
	select {
	case w.kick <- struct{}{}:
	default: // a rebuild is already due; it will read this flip too
	}
}

// run answers kicks until stop.
func (w *xdpWatch) run() {
	t := time.NewTimer(xdpHealthDebounce)
	t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		}
		t.Reset(xdpHealthDebounce)
		select {
		case <-w.quit:
			t.Stop()
			return
		case <-t.C:
		}
		// Flips during the wait are visible now; their kick is spent.
		select {
		case <-w.kick:
		default:
		}
		w.apply()
	}
}

// apply rebuilds the state from the config last applied and the pools'
// health now, and applies it.
func (w *xdpWatch) apply() {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, _, err := xdpState(w.cfg, w.pools, w.macs)
	if err == nil {
		err = w.prog.Apply(st)
	}
	if err != nil {
		// The tables keep their last content; the next flip or reload
		// tries again.
		xdpHealthFailed.Inc()
		w.log.Warn().Err(err).Msg("xdp: applying backend health failed")
		return
	}
	xdpHealthApplied.Inc()
	w.applied.Add(1)
	if e := w.log.Debug(); e.Enabled() {
		drained := 0
		for _, s := range st.Services {
			for _, b := range s.Backends {
				if b.Weight == 0 {
					drained++
				}
			}
		}
		e.Int("drained", drained).Msg("xdp: backend health applied")
	}
}

// stop removes the hooks, ends the watcher and waits for it (an apply in
// progress finishes first).
func (w *xdpWatch) stop() {
	w.mu.Lock()
	w.swap(w.cfg, w.pools, w.macs, nil)
	w.mu.Unlock()
	close(w.quit)
	w.wg.Wait()
}
