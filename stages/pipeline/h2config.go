package pipeline

import (
	"context"
	"net"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages/decode"
	"github.com/expressgateway/expressgateway/stages/encode"
)

// h2Config builds an HTTP listener's HTTP/2 front settings from its
// [listeners.h2_security] and [listeners.http] sections.
func h2Config(lc conf.Listener, cfg *conf.Config, drain context.Context) *decode.H2Config {
	s := lc.H2
	keepAlive := conf.DefaultH2KeepAliveIntervalMs
	if s.KeepAliveIntervalMs != nil {
		keepAlive = *s.KeepAliveIntervalMs
	}
	c := &decode.H2Config{
		MaxConcurrentStreams: s.MaxConcurrentStreams,
		MaxHeaderListSize:    s.MaxHeaderListSize,
		MaxFields:            lc.HTTP.MaxHeaderFields,
		Underscore:           underscorePolicy(cfg.Runtime.HeaderUnderscorePolicy),
		StreamWindow:         s.InitialStreamWindowSize,
		ConnWindow:           s.InitialConnectionWindowSize,
		MaxContinuation:      s.MaxContinuationFrames,
		ControlPerSecond:     s.ControlFramesPerSecond,
		RapidResetThreshold:  s.RapidResetThreshold,
		LocalErrorResets:     s.MaxLocalErrorResetStreams,
		ZeroWindowTimeout:    ms(s.ZeroWindowTimeoutMs),
		MaxStreamsPerConn:    s.MaxStreamsPerConnection,
		GlitchThreshold:      s.GlitchThreshold,
		HeaderTimeout:        ms(lc.HTTP.HeaderTimeoutMs),
		IdleTimeout:          ms(lc.HTTP.IdleTimeoutMs),
		BodyTimeout:          ms(lc.HTTP.BodyTimeoutMs),
		MinBodyBps:           cfg.Runtime.Watchdog.BodyProgressMinBps,
		RateWindow:           10 * ms(cfg.Runtime.Watchdog.SweepIntervalMs),
		WriteTimeout:         ms(lc.HTTP.WriteTimeoutMs),
		MaxBodyBytes:         lc.HTTP.MaxBodyBytes,
		StreamBytes:          bus.DefaultStreamBytes,
		SendBuf:              int64(s.MaxSendBufSize),
		KeepAlive:            ms(keepAlive),
		KeepAliveTimeout:     ms(s.KeepAliveTimeoutMs),
		Global:               globalBudget,
		Drain:                drain,
		WS:                   extendedConnectLimits(&lc, lc.WebSocketSettings().H2ExtendedConnect),
		TunnelProtocols:      lc.ExtendedConnectProtocols,
	}
	c.NewSender = h2Sender(c)
	return c
}

// h2Sender builds an HTTP/2 connection's writer (stages/encode) for the
// decoder, with c's write timeout, connection window and log as they are
// when the connection starts.
func h2Sender(c *decode.H2Config) decode.H2SenderFunc {
	return func(conn net.Conn, bw *h2.BufWriter, w *h2.Writer, onStop func(error)) decode.H2Sender {
		return encode.NewH2Writer(conn, bw, w, encode.H2WriterConfig{
			WriteTimeout: c.WriteTimeout,
			ConnWindow:   c.ConnWindow,
			Log:          c.Log,
			OnStop:       onStop,
		})
	}
}
