package conf

import (
	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
)

// Defaults, each named for what it bounds. Values follow the Rust ExpressGateway
// implementation where it has one.
const (
	DefaultHeaderTimeoutMs   = 10_000   // slowloris: the whole head must arrive in 10 s
	DefaultBodyTimeoutMs     = 30_000   // a body making no progress for 30 s is cut
	DefaultTotalTimeoutMs    = 60_000   // request start → response head sent
	DefaultHeadTimeoutMs     = 60_000   // request sent → backend response head
	DefaultIdleTimeoutMs     = 60_000   // keep-alive idle between requests
	DefaultWriteTimeoutMs    = 30_000   // a client that stops reading for 30 s is closed
	DefaultMaxBodyBytes      = 64 << 20 // 413 past this
	DefaultMaxHeaderBytes    = 64 << 10 // 431 past this
	DefaultMaxHeaderFields   = frames.MaxFieldCount
	DefaultMaxURIBytes       = 8 << 10 // 414 past this
	DefaultDrainTimeoutMs    = 10_000
	DefaultSettleMs          = 0 // the Rust ExpressGateway's 11 s settle suits a load balancer in front; 0 drains at once
	DefaultHandshakeTimeout  = 5_000
	DefaultConnectTimeoutMs  = 5_000
	DefaultMaxInflightConns  = 65_536
	DefaultPerIPConnCap      = 1_024
	DefaultMaxKeepaliveReqs  = 100
	DefaultMaxReqsPerH3Conn  = 1_000
	DefaultXDPNewFlowCap     = 125_000
	DefaultBodyMinBps        = 64
	DefaultSweepIntervalMs   = 1_000
	DefaultHeaderDeadlineMs  = 5_000
	DefaultUpstreamIdleMs    = 60_000
	DefaultDNSTimeoutMs      = 2_000   // one query to one server
	DefaultDNSMinTTLMs       = 1_000   // re-resolve no sooner than this
	DefaultDNSMaxTTLMs       = 300_000 // and no later
	DefaultUpstreamMaxAgeMs  = 300_000
	DefaultUpstreamIdlePerBE = 64
	DefaultAltSvcMaxAge      = 3_600
	DefaultTicketRotationS   = 86_400
	DefaultQUICIdleMs        = 30_000
	DefaultQUICRecvPayload   = 1_350
	DefaultH3FieldSection    = 64 << 10

	DefaultWSIdleTimeoutS      = 60
	DefaultWSMaxMessageBytes   = 16 << 20 // one message held for relay at most
	DefaultWSPingsPerWindow    = 50       // PING flood guard
	DefaultWSPingWindowS       = 10
	DefaultWSReadFrameTimeoutS = 30 // slow-frame (slowloris) guard
	DefaultWSMaxTunnels        = 65536
	DefaultWSMaxTunnelsPerIP   = 256
	DefaultGRPCMaxDeadlineS    = 300

	DefaultH2MaxConcurrentStreams = 100
	DefaultH2MaxHeaderListSize    = 64 << 10
	DefaultH2RapidResetThreshold  = 100
	DefaultH2MaxContinuation      = 32
	DefaultH2ControlFramesPerSec  = 1_000
	DefaultH2ZeroWindowTimeoutMs  = 30_000
	DefaultH2MaxStreamsPerConn    = 10_000
	DefaultH2GlitchThreshold      = 1_000
	DefaultH2InitialStreamWindow  = 256 << 10
	DefaultH2InitialConnWindow    = 1 << 20
	DefaultH2KeepAliveIntervalMs  = 30_000
	DefaultH2KeepAliveTimeoutMs   = 30_000
	DefaultH2MaxLocalErrorResets  = 100
	DefaultH2MaxSendBufSize       = bus.DefaultStreamBytes
)

// Default returns a config with every top-level default set; the loader
// decodes the file over it, so keys the file omits keep these values, and a
// key the file sets to 0 really is 0.
func Default() Config {
	return Config{
		Runtime: Runtime{
			XDPMode:                    "auto",
			XDPNewFlowCapPerSecPerCPU:  DefaultXDPNewFlowCap,
			DrainTimeoutMs:             DefaultDrainTimeoutMs,
			ReadinessSettleMs:          DefaultSettleMs,
			HandshakeTimeoutMs:         DefaultHandshakeTimeout,
			ConnectTimeoutMs:           DefaultConnectTimeoutMs,
			MaxInflightConnections:     DefaultMaxInflightConns,
			PerIPConnectionCap:         DefaultPerIPConnCap,
			HeaderUnderscorePolicy:     "reject",
			MaxKeepaliveRequests:       DefaultMaxKeepaliveReqs,
			MaxRequestsPerH3Connection: DefaultMaxReqsPerH3Conn,
			Watchdog: Watchdog{
				HeaderDeadlineMs:   DefaultHeaderDeadlineMs,
				BodyProgressMinBps: DefaultBodyMinBps,
				SweepIntervalMs:    DefaultSweepIntervalMs,
			},
			DNS:                       DNS{TimeoutMs: DefaultDNSTimeoutMs, MinTTLMs: DefaultDNSMinTTLMs, MaxTTLMs: DefaultDNSMaxTTLMs},
			UpstreamIdleTimeoutMs:     DefaultUpstreamIdleMs,
			UpstreamMaxAgeMs:          DefaultUpstreamMaxAgeMs,
			UpstreamMaxIdlePerBackend: DefaultUpstreamIdlePerBE,
		},
		// A transfer coding other than chunked is answered 501, as nginx
		// does; off, it is forwarded to HTTP/1.1 backends, never dropped.
		Security:      Security{StrictTE: true},
		Observability: Observability{AccessLogFormat: "json", Tracing: Tracing{SampleRatio: 1, ServiceName: "expressgateway"}},
	}
}

// setDefaults fills what the file left zero in list elements, where a
// pre-filled struct cannot reach. For these keys 0 is never a valid value.
func (c *Config) setDefaults() {
	for i := range c.Listeners {
		c.Listeners[i].setDefaults()
	}
	for i := range c.Pools {
		c.Pools[i].setDefaults()
	}
	c.setL4Defaults()
	c.Passthrough.setDefaults()
}

func (l *Listener) setDefaults() {
	if l.Name == "" {
		l.Name = DefaultListenerName(l.Protocol, l.Address)
	}
	l.UDP.setDefaults()
	h := &l.HTTP
	def(&h.HeaderTimeoutMs, DefaultHeaderTimeoutMs)
	def(&h.BodyTimeoutMs, DefaultBodyTimeoutMs)
	def(&h.TotalTimeoutMs, DefaultTotalTimeoutMs)
	def(&h.HeadTimeoutMs, DefaultHeadTimeoutMs)
	def(&h.IdleTimeoutMs, DefaultIdleTimeoutMs)
	def(&h.WriteTimeoutMs, DefaultWriteTimeoutMs)
	def(&h.MaxHeaderBytes, DefaultMaxHeaderBytes)
	def(&h.MaxHeaderFields, DefaultMaxHeaderFields)
	def(&h.MaxURIBytes, DefaultMaxURIBytes)
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &l.H2
	// max_pending_accept_reset_streams and rapid_reset_threshold are one
	// rule under two names: the smaller set one wins.
	if p := s.MaxPendingAcceptResetStreams; p > 0 && (s.RapidResetThreshold == 0 || p < s.RapidResetThreshold) {
		s.RapidResetThreshold = p
	}
	def(&s.RapidResetThreshold, DefaultH2RapidResetThreshold)
	s.MaxPendingAcceptResetStreams = s.RapidResetThreshold
	def(&s.MaxLocalErrorResetStreams, DefaultH2MaxLocalErrorResets)
	def(&s.MaxConcurrentStreams, DefaultH2MaxConcurrentStreams)
	def(&s.MaxHeaderListSize, DefaultH2MaxHeaderListSize)
	def(&s.MaxSendBufSize, DefaultH2MaxSendBufSize)
	if s.KeepAliveIntervalMs == nil {
		v := DefaultH2KeepAliveIntervalMs
		s.KeepAliveIntervalMs = &v
	}
	def(&s.KeepAliveTimeoutMs, DefaultH2KeepAliveTimeoutMs)
	def(&s.InitialStreamWindowSize, DefaultH2InitialStreamWindow)
	def(&s.InitialConnectionWindowSize, DefaultH2InitialConnWindow)
	def(&s.MaxContinuationFrames, DefaultH2MaxContinuation)
	def(&s.ControlFramesPerSecond, DefaultH2ControlFramesPerSec)
	def(&s.ZeroWindowTimeoutMs, DefaultH2ZeroWindowTimeoutMs)
	def(&s.MaxStreamsPerConnection, DefaultH2MaxStreamsPerConn)
	def(&s.GlitchThreshold, DefaultH2GlitchThreshold)
	if l.TLS != nil {
		def(&l.TLS.TicketRotationIntervalSeconds, DefaultTicketRotationS)
		def(&l.TLS.TicketRotationOverlapSeconds, DefaultTicketRotationS)
	}
	if l.AltSvc != nil {
		def(&l.AltSvc.MaxAge, DefaultAltSvcMaxAge)
	}
	if w := l.WS; w != nil {
		w.setDefaults()
	}
	if g := l.GRPC; g != nil {
		defBool(&g.Enabled, true)
		def(&g.MaxDeadlineSeconds, DefaultGRPCMaxDeadlineS)
		defBool(&g.HealthSynthesized, true)
	}
	if q := l.QUIC; q != nil {
		def(&q.MaxIdleTimeoutMs, DefaultQUICIdleMs)
		def(&q.MaxRecvUDPPayloadSize, DefaultQUICRecvPayload)
		def(&q.MaxFieldSectionSize, DefaultH3FieldSection)
		defBool(&q.H3Datagrams, true)
		if q.EarlyDataPolicy == "" {
			q.EarlyDataPolicy = "reject"
			if q.RawProxy != nil {
				// Mode B cannot answer 425 inside an opaque stream: early
				// streams wait for the handshake.
				q.EarlyDataPolicy = "wait"
			}
		}
		if q.RawProxy != nil {
			q.RawProxy.setDefaults()
		}
	}
	for i := range l.Backends {
		l.Backends[i].setDefaults()
	}
	for i := range l.Routes {
		r := &l.Routes[i]
		if r.Name == "" {
			r.Name = r.Host + r.PathPrefix
			if r.Name == "" {
				r.Name = "route" + itoa(i)
			}
		}
		for j := range r.Backends {
			r.Backends[j].setDefaults()
		}
		if d := r.DirectResponse; d != nil && d.ContentType == "" {
			d.ContentType = "text/plain; charset=utf-8"
		}
	}
}

// DefaultListenerName names a listener that has no name: its protocol and
// address ("h1s/0.0.0.0:443"), so that an h1s (TCP) and a quic (UDP)
// listener sharing an address, the usual HTTP/3 deployment, get distinct
// names in metrics and logs.
func DefaultListenerName(protocol, address string) string {
	return protocol + "/" + address
}

// WebSocketSettings are a listener's WebSocket settings: its
// [listeners.websocket] block, or the defaults when it has none (WebSocket
// upgrades are accepted unless enabled = false says otherwise).
func (l *Listener) WebSocketSettings() WebSocket {
	if l.WS != nil {
		return *l.WS
	}
	var w WebSocket
	w.setDefaults()
	return w
}

func (w *WebSocket) setDefaults() {
	defBool(&w.Enabled, true)
	defBool(&w.H2ExtendedConnect, true)
	defBool(&w.H3ExtendedConnect, true)
	def(&w.IdleTimeoutSeconds, DefaultWSIdleTimeoutS)
	def(&w.MaxMessageSizeBytes, DefaultWSMaxMessageBytes)
	def(&w.PingRateLimitPerWindow, DefaultWSPingsPerWindow)
	def(&w.PingRateLimitWindowSeconds, DefaultWSPingWindowS)
	def(&w.ReadFrameTimeoutSeconds, DefaultWSReadFrameTimeoutS)
	def(&w.MaxTunnels, DefaultWSMaxTunnels)
	def(&w.MaxTunnelsPerIP, DefaultWSMaxTunnelsPerIP)
}

func defBool(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}

func def(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}
