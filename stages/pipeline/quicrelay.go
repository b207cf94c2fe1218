package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/l4"
	"github.com/expressgateway/expressgateway/stages/quicrelay"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// This file wires QUIC Mode B ([listeners.quic.raw_proxy]): the quic
// listener's endpoint (accept stage: Retry, caps, 0-RTT only with
// allow_0rtt, its streams waiting for the handshake) accepts any ALPN
// the client offers (or those of alpn), and each connection is relayed by
// stages/quicrelay to a backend of the listener's pool, which
// reloads swap as they do an L4 listener's.

// configureModeB (re)builds a Mode B listener's pool and access-log
// setting; def is its backends' or named pool, nil for backend_addr.
func (g *Gateway) configureModeB(l *listener, cfg *conf.Config, def *route.Pool, bc *backendConns) error {
	lc := l.cfg
	if def == nil {
		pc := conf.Pool{Name: poolName(lc.Name), Algorithm: conf.DefaultAlgorithm,
			Backends: []conf.Backend{{Address: lc.QUIC.RawProxy.BackendAddr, Protocol: "quic"}}}
		var err error
		if def, err = newPool(pc, "listeners."+lc.Name+".quic.raw_proxy", bc, nil, g.dns); err != nil {
			return err
		}
	}
	l.pool.Store(def)
	l.connect.Store(int64(ms(cfg.Runtime.ConnectTimeoutMs)))
	l.streamLog.Store(g.newStreamLog(cfg))
	return nil
}

// modeBAccept are the accept-stage settings a Mode B endpoint differs in:
// its ALPN choice, a uni-stream cap of max_relay_streams, datagrams on.
func (g *Gateway) modeBAccept(lc conf.Listener, qc *quicAcceptExtras) {
	if !lc.ModeB() {
		return
	}
	r := lc.QUIC.RawProxy
	qc.alpn = func(offered []string) []string {
		return quicrelay.ALPNFilter(g.rawProxy(lc.Name, r).ALPN)(offered)
	}
	qc.uni = int64(r.MaxRelayStreams)
}

// quicAcceptExtras are the fields of accept.QUICConfig a listener's mode
// sets (zero: HTTP/3's).
type quicAcceptExtras struct {
	alpn func([]string) []string
	uni  int64
}

// modeBQUIC is the [listeners.quic] of the Mode B listener named name in
// the running config (a reload's, once it applied), boot's when it has
// none: the keys a reload applies to new connections are read here.
func (g *Gateway) modeBQUIC(name string, boot *conf.QUIC) *conf.QUIC {
	if cfg := g.running.Load(); cfg != nil {
		for i := range cfg.Listeners {
			if l := &cfg.Listeners[i]; l.Name == name && l.ModeB() {
				return l.QUIC
			}
		}
	}
	return boot
}

// rawProxy is modeBQUIC's raw_proxy.
func (g *Gateway) rawProxy(name string, boot *conf.RawProxy) *conf.RawProxy {
	return g.modeBQUIC(name, &conf.QUIC{RawProxy: boot}).RawProxy
}

// openRelay builds a Mode B listener's relay: its upstream socket, and
// the backend TLS settings (restart keys) its dials use.
func (g *Gateway) openRelay(l *listener) error {
	r := l.cfg.QUIC.RawProxy
	var roots *x509.CertPool
	if r.BackendCAPath != "" {
		pem, err := os.ReadFile(r.BackendCAPath)
		if err != nil {
			return fmt.Errorf("raw_proxy backend_ca_path: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return errors.New("raw_proxy backend_ca_path: no PEM certificate in " + r.BackendCAPath)
		}
	}
	name := l.cfg.Name
	relay, err := quicrelay.New(quicrelay.Options{
		Listener: l.cfg.Name,
		Pool:     func() *route.Pool { return l.pool.Load() },
		TLS: func(b *route.Backend) (*tls.Config, error) {
			o, ok := b.Opts.(*upstream.BackendOpts)
			if !ok || o.TLS == nil {
				return nil, fmt.Errorf("backend %s has no TLS settings", b.Address)
			}
			tc := o.TLS.Clone()
			if sni := g.rawProxy(name, r).SNI; sni != "" {
				tc.ServerName = sni
			}
			if tc.RootCAs == nil { // the backend's own tls_ca_path wins
				tc.RootCAs = roots
			}
			return tc, nil
		},
		Settings: func() quicrelay.Settings {
			q := g.modeBQUIC(name, l.cfg.QUIC)
			return quicrelay.Settings{
				MaxStreams:     q.RawProxy.MaxRelayStreams,
				DgramQueue:     q.RawProxy.DgramQueueCap,
				ConnectTimeout: time.Duration(l.connect.Load()),
				IdleTimeout:    ms(q.MaxIdleTimeoutMs),
			}
		},
		StreamWindow: bus.DefaultStreamBytes,
		ConnWindow:   bus.DefaultConnBytes,
		Log:          g.log,
	})
	if err != nil {
		return err
	}
	l.relay = relay
	return nil
}

// serveModeB runs a Mode B listener's accept loop: each connection is
// relayed under the listener's connection context, which the drain cuts
// once its budget is spent (both sides then get CodeShutdown).
func (g *Gateway) serveModeB(l *listener) {
	var connsTotal *metrics.Counter
	l.active, connsTotal = listenerSeries(l)
	g.run(l, func(ctx context.Context) {
		l.quic.Serve(ctx, func(_ context.Context, c *quic.Conn, remote netip.AddrPort) {
			l.conns.Add(1)
			defer l.conns.Add(-1)
			connsTotal.Inc()
			defer func() {
				if v := recover(); v != nil {
					stages.Panicked(g.log, v, nil)
					c.CloseWithError(quicrelay.CodeInternal, "expressgateway: internal error")
				}
			}()
			start := time.Now()
			res, err := l.relay.Serve(l.connCtx, c, remote)
			if err != nil {
				g.log.Debug().Err(err).Str("listener", l.cfg.Name).Str("alpn", res.ALPN).Msg("quic relay")
			}
			l.streamLog.Load().conn(l.cfg.Name, "quic", remote, start,
				l4.Relayed{Backend: res.Backend, ToBackend: res.ToBackend, ToClient: res.ToClient}, err)

		})
		l.quic.Close()
		l.relay.Close()
	})
}
