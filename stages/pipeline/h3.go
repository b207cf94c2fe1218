package pipeline

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames/h3"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/accept"
	"github.com/expressgateway/expressgateway/stages/decode"
	"github.com/expressgateway/expressgateway/stages/guard"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// defaultH3Streams is the concurrent request streams per QUIC connection
// when [listeners.h2_security] max_concurrent_streams is unset: it is the
// MAX_STREAMS credit, returned only when a stream's handler is done.
const defaultH3Streams = 100

// h3Config builds a quic listener's HTTP/3 front settings. The stream cap
// and the reset-flood threshold come from [listeners.h2_security], so both
// multiplexed fronts share one set of knobs.
func h3Config(lc conf.Listener, cfg *conf.Config, draining <-chan struct{}, log zerolog.Logger) *decode.H3Config {
	q := lc.QUIC
	c := &decode.H3Config{
		Limits:            h3.Limits{MaxSize: h3.DefaultMaxFieldSectionSize, MaxFields: lc.HTTP.MaxHeaderFields, Underscore: underscorePolicy(cfg.Runtime.HeaderUnderscorePolicy)},
		MaxBodyBytes:      lc.HTTP.MaxBodyBytes,
		StreamBytes:       bus.DefaultStreamBytes,
		ConnBytes:         bus.DefaultConnBytes,
		Global:            globalBudget,
		MaxStreamsPerConn: cfg.Runtime.MaxRequestsPerH3Connection,
		ResetFlood:        guard.ResetFlood{Max: guard.DefaultH3ResetFloodMax, Window: guard.DefaultH3ResetFloodWindow},
		HeaderTimeout:     ms(lc.HTTP.HeaderTimeoutMs),
		BodyTimeout:       ms(lc.HTTP.BodyTimeoutMs),
		WriteTimeout:      ms(lc.HTTP.WriteTimeoutMs),
		WS:                extendedConnectLimits(&lc, lc.WebSocketSettings().H3ExtendedConnect),
		Log:               log,
		Draining:          draining,
		OnPanic: func(v any, stack []byte) {
			stages.PanicsTotal.Inc()
			log.Error().Interface("panic", v).Bytes("stack", stack).Str("listener", lc.Name).Msg("h3 connection panic")
		},
	}
	if lc.H2.RapidResetThreshold > 0 {
		c.ResetFlood.Max = lc.H2.RapidResetThreshold
	}
	if q != nil {
		if q.MaxFieldSectionSize > 0 {
			c.Limits.MaxSize = q.MaxFieldSectionSize
		}
		c.Allow0RTT = q.Allow0RTT
		if q.EarlyDataPolicy == "wait" {
			c.Early = decode.EarlyWait
		}
		c.Datagrams = q.H3Datagrams != nil && *q.H3Datagrams
	}
	c.MaxStreams = h3Streams(lc)
	c.TunnelProtocols = lc.ExtendedConnectProtocols
	return c
}

// h3Streams is the concurrent request streams a quic listener allows per
// connection (its MAX_STREAMS).
func h3Streams(lc conf.Listener) int64 {
	if n := int64(lc.H2.MaxConcurrentStreams); n > 0 {
		return n
	}
	return defaultH3Streams
}

// h3Transport is the "h3" backend transport of a listener.
func h3Transport(uo upstream.Options) *upstream.H3 {
	return &upstream.H3{Opts: uo, StreamWindow: bus.DefaultStreamBytes, ConnWindow: bus.DefaultConnBytes}
}

// quicLive is what a quic listener applies to each new connection, from
// its config (boot and reload).
func quicLive(lc conf.Listener) accept.QUICLive {
	q := lc.QUIC
	streams, uni := h3Streams(lc), int64(0)
	dgrams := q.H3Datagrams != nil && *q.H3Datagrams
	if lc.ModeB() {
		streams = int64(q.RawProxy.MaxRelayStreams)
		uni, dgrams = streams, true
	}
	return accept.QUICLive{MaxIdleTimeout: ms(q.MaxIdleTimeoutMs), Allow0RTT: q.Allow0RTT, MaxStreams: streams, RetryAbovePerSec: q.RetryAboveNewConnsPerS,
		MaxUniStreams: uni, Datagrams: dgrams}
}

// listenQUIC opens a quic listener's UDP socket and QUIC endpoint.
func (g *Gateway) listenQUIC(l *listener) error {
	q := l.cfg.QUIC
	secret, err := accept.ReadRetrySecret(q.RetrySecretPath)
	if err != nil {
		return err
	}
	if l.tlsCfg.Load() == nil {
		cert, err := tls.LoadX509KeyPair(q.CertPath, q.KeyPath)
		if err != nil {
			return fmt.Errorf("load certificate %s / %s: %w", q.CertPath, q.KeyPath, err)
		}
		l.tlsCfg.Store(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"h3"}})
	}
	live := quicLive(l.cfg)
	perIP, maxConns := q.MaxConnectionsPerIP, q.MaxConnections
	if perIP <= 0 {
		perIP = g.cfg.Runtime.PerIPConnectionCap
	}
	if maxConns <= 0 {
		maxConns = g.cfg.Runtime.MaxInflightConnections
	}
	var mode quicAcceptExtras
	g.modeBAccept(l.cfg, &mode)
	qm := newQUICSeries(l.cfg.Name)
	l.quicM = qm
	tickets, err := newQUICTicketKeys(secret)
	if err != nil {
		return err
	}
	ql, err := accept.ListenQUIC(&accept.QUICConfig{
		Address:          l.cfg.Address,
		TLS:              func() *tls.Config { return l.tlsCfg.Load() },
		RetrySecret:      secret,
		TicketKeys:       tickets.keysAt,
		RetryAbovePerSec: live.RetryAbovePerSec,
		MaxIdleTimeout:   live.MaxIdleTimeout,
		HandshakeTimeout: ms(g.cfg.Runtime.HandshakeTimeoutMs),
		MaxUDPPayload:    q.MaxRecvUDPPayloadSize,
		Allow0RTT:        live.Allow0RTT,
		MaxStreams:       live.MaxStreams,
		Datagrams:        live.Datagrams,
		ALPN:             mode.alpn,
		MaxUniStreams:    mode.uni,
		StreamWindow:     bus.DefaultStreamBytes,
		ConnWindow:       bus.DefaultConnBytes,
		Gate:             accept.NewGate(perIP, maxConns),
		OnReject: func(r accept.Reject) {
			if r == accept.OverPerIP {
				guard.QUICPerIPCap.Inc()
				rejectPerIP.Inc()
			} else {
				guard.QUICConnCap.Inc()
				rejectInflight.Inc()
			}
		},
		OnRetry: func() {
			guard.QUICRetry.Inc()
			qm.retrySent.Inc()
		},
		Log: g.log,
	})
	if err != nil {
		return err
	}
	l.quic = ql
	if l.cfg.ModeB() {
		if err := g.openRelay(l); err != nil {
			ql.Close()
			l.quic = nil
			return err
		}
	}
	return nil
}

// serveQUIC runs a quic listener's accept loop: every connection that
// negotiated h3 gets an HTTP/3 front on the listener's stream actor.
func (g *Gateway) serveQUIC(l *listener) {
	var connsTotal *metrics.Counter
	l.active, connsTotal = listenerSeries(l)
	local := l.quic.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	g.run(l, func(ctx context.Context) {
		l.quic.Serve(ctx, func(_ context.Context, c *quic.Conn, remote netip.AddrPort) {
			l.conns.Add(1)
			defer l.conns.Add(-1)
			connsTotal.Inc()
			info := &stages.ConnInfo{Listener: l.cfg.Name, Remote: remote, Local: local, Proto: "HTTP/3"}
			cs := c.ConnectionState().TLS
			info.TLS = &cs
			cfg := l.h3cfg.Load()
			if ch, release, own := l.connDrain(); own {
				defer release()
				c := *cfg
				c.Draining, cfg = ch.Done(), &c
			}
			served := make(chan struct{})
			var hs sync.WaitGroup
			hs.Go(func() { l.quicM.handshake(c, served) })
			decode.ServeH3(l.connCtx, c, info, cfg, l.proxy)
			close(served)
			hs.Wait()
		})
		l.quic.Close()
	})
}
