package conf

// Config is the whole file.
type Config struct {
	// Listeners are the sockets the gateway serves. At least one is required.
	Listeners []Listener `koanf:"listeners"`
	// Pools are named backend groups that listeners and routes refer to with
	// pool = "NAME".
	Pools         []Pool        `koanf:"pools"`
	Runtime       Runtime       `koanf:"runtime"`
	Observability Observability `koanf:"observability"`
	Admin         Admin         `koanf:"admin"`
	Security      Security      `koanf:"security"`
	// XDP is the kernel fast path's services and deny list (conf/xdp.go).
	XDP XDP `koanf:"xdp"`
	// Passthrough is QUIC passthrough (Mode A, conf/passthrough.go).
	Passthrough Passthrough `koanf:"passthrough"`

	// File is the path the config was loaded from (not a TOML key).
	File string `koanf:"-"`
}

// Listener is one [[listeners]] entry.
type Listener struct {
	// Name labels the listener in metrics and logs and identifies it on
	// reload; unique. Defaults to protocol/address ("h1s/0.0.0.0:443"), so
	// an h1s and a quic listener may share an address without names.
	Name string `koanf:"name"`
	// Address is host:port to bind (IPv6 bracketed). Required.
	Address string `koanf:"address"`
	// Protocol is tcp (L4 relay), tls (terminate TLS, relay bytes), udp (L4
	// datagram relay), h1 (HTTP/1.1 and h2c prior knowledge), h1s (TLS with
	// ALPN h2 and http/1.1) or quic (HTTP/3). Required.
	Protocol string `koanf:"protocol"`
	// DrainTimeoutMs overrides [runtime].drain_timeout_ms for this
	// listener: on SIGTERM, and when a reload removes it, its connections
	// get this long to finish.
	DrainTimeoutMs *int `koanf:"drain_timeout_ms"`
	// DrainJitterMs overrides [runtime].drain_jitter_ms for this listener
	// (at most its drain timeout).
	DrainJitterMs *int `koanf:"drain_jitter_ms"`

	TLS      *ListenerTLS `koanf:"tls"`
	QUIC     *QUIC        `koanf:"quic"`
	AltSvc   *AltSvc      `koanf:"alt_svc"`
	HTTP     HTTP         `koanf:"http"`
	H2       H2Security   `koanf:"h2_security"`
	WS       *WebSocket   `koanf:"websocket"`
	GRPC     *GRPC        `koanf:"grpc"`
	Backends []Backend    `koanf:"backends"` // The default route's backends (round robin); see the backends table.
	// UDP tunes the datagram relay of a udp listener (conf/xdp.go).
	UDP UDPRelay `koanf:"udp"`
	// Pool names a [[pools]] entry used as the default route (instead of
	// backends).
	Pool string `koanf:"pool"`
	// Routes are matched in order; the first match wins. The listener's own
	// backends (or pool) are the default route when none matches.
	Routes []Route `koanf:"routes"`

	// ExtendedConnectProtocols are the extended CONNECT :protocol values
	// besides websocket that the HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220)
	// fronts relay to the backend as a tunnel: its bytes go both ways
	// unexamined and its HTTP Datagrams with it (connect-udp of RFC 9298,
	// for one); from an HTTP/2 client that sends capsule-protocol: ?1 its
	// DATAGRAM capsules become HTTP/3 datagrams, and back (RFC 9297 §3).
	// The backend must be HTTP/2 or HTTP/3 (extended CONNECT once its
	// SETTINGS allow it); an HTTP/1.1 one gets no request and the client
	// 501, as does any :protocol not listed. Tokens, each once; websocket
	// is governed by [listeners.websocket].
	ExtendedConnectProtocols []string `koanf:"extended_connect_protocols"`
}

// ListenerTLS is [listeners.tls]: the certificate of a tls or h1s listener.
type ListenerTLS struct {
	// CertPath is the PEM certificate chain. Required.
	CertPath string `koanf:"cert_path"`
	// KeyPath is the PEM private key. Its owner and its group may read it
	// (0600, 0400, 0640, 0440); one other users can read, write or
	// execute, or its group can write, is refused, at boot and on
	// SIGUSR1. Required.
	KeyPath string `koanf:"key_path"`
	// TicketRotationIntervalSeconds is how often the session-ticket key
	// changes: new tickets are sealed with the key of the current interval
	// (epochs counted from the Unix epoch, so instances sharing
	// ticket_key_path switch at the same instant).
	TicketRotationIntervalSeconds int `koanf:"ticket_rotation_interval_seconds"`
	// TicketRotationOverlapSeconds is how long after its interval ends an
	// old key still opens tickets (resumption); past it they fall back to a
	// full handshake.
	TicketRotationOverlapSeconds int `koanf:"ticket_rotation_overlap_seconds"`
	// TicketKeyPath is a file holding the secret the ticket keys are
	// derived from (HKDF of the secret and the interval number); instances
	// given the same file resume each other's sessions without talking. A
	// missing file is created with 32 random bytes, mode 0600; an existing
	// one follows key_path's mode rule. Empty: a random secret per process.
	TicketKeyPath string `koanf:"ticket_key_path"`
}

// QUIC is [listeners.quic]: QUIC termination settings (HTTP/3, or Mode B
// with raw_proxy).
type QUIC struct {
	CertPath               string `koanf:"cert_path"`                     // PEM certificate chain of the QUIC listener.
	KeyPath                string `koanf:"key_path"`                      // PEM private key; the mode rule of [listeners.tls] key_path (0600, 0400, 0640 or 0440).
	RetrySecretPath        string `koanf:"retry_secret_path"`             // 32-byte secret keying Retry tokens and the session-ticket keys (rotated daily, the previous day's still accepted); created 0600 if absent, so tokens and resumption (0-RTT) survive a restart and work across instances sharing the file; an existing one follows key_path's mode rule.
	MaxIdleTimeoutMs       int    `koanf:"max_idle_timeout_ms"`           // QUIC idle timeout.
	MaxRecvUDPPayloadSize  int    `koanf:"max_recv_udp_payload_size"`     // Largest UDP payload accepted; bigger datagrams are dropped in the kernel (a socket filter). 1200 to 1452: 1200 is QUIC's minimum (RFC 9000 §14), 1452 the largest packet the QUIC stack reads.
	Allow0RTT              bool   `koanf:"allow_0rtt"`                    // Accept TLS early data (0-RTT); see early_data_policy.
	EarlyDataPolicy        string `koanf:"early_data_policy"`             // reject: non-idempotent requests in early data get 425; wait: they are held until the handshake completes. A raw_proxy listener takes only wait (its default there): every stream waits for the handshake.
	MaxConnectionsPerIP    int    `koanf:"max_connections_per_ip"`        // QUIC connections one source IP may hold (0 = none).
	MaxConnections         int    `koanf:"max_connections"`               // QUIC connections the listener may hold (0 = none).
	RetryAboveNewConnsPerS int    `koanf:"retry_above_new_conns_per_sec"` // Send a stateless Retry above this many new connections per second (0 = always).
	MaxFieldSectionSize    int    `koanf:"max_field_section_size"`        // Decoded header section cap (QPACK bomb guard).

	// H3Datagrams negotiates HTTP Datagrams (RFC 9297): QUIC datagram
	// support and SETTINGS_H3_DATAGRAM=1 are offered, and a client's
	// datagrams on a request stream are relayed to an HTTP/3 backend that
	// takes them, and back (to any other backend they are dropped and
	// counted). false offers neither. New connections take a change.
	H3Datagrams *bool `koanf:"h3_datagrams"`
	// RawProxy makes the listener Mode B (conf/rawproxy.go): QUIC is
	// terminated and every stream and datagram relayed over a new QUIC
	// connection to a backend, whatever the application protocol; no
	// HTTP/3.
	RawProxy *RawProxy `koanf:"raw_proxy"`
}

// AltSvc is [listeners.alt_svc]: advertise an HTTP/3 endpoint on H1/H2
// responses.
type AltSvc struct {
	H3Port int `koanf:"h3_port"` // UDP port of the HTTP/3 listener to advertise.
	MaxAge int `koanf:"max_age"` // ma= seconds in the Alt-Svc value.
}

// HTTP is [listeners.http]: timeouts and size caps of an HTTP listener.
type HTTP struct {
	// HeaderTimeoutMs bounds reading a whole request head, however the bytes
	// trickle in (slowloris).
	HeaderTimeoutMs int `koanf:"header_timeout_ms"`
	// BodyTimeoutMs is the longest a request or response body may make no
	// progress.
	BodyTimeoutMs int `koanf:"body_timeout_ms"`
	// TotalTimeoutMs bounds one request from its first byte until its
	// response head is sent. It is per request, not per connection: a long
	// download or keep-alive session is governed by the idle and rate limits.
	TotalTimeoutMs int `koanf:"total_timeout_ms"`
	// HeadTimeoutMs is the longest to wait for the backend's response head
	// once the request is sent.
	HeadTimeoutMs int `koanf:"head_timeout_ms"`
	// IdleTimeoutMs closes a keep-alive connection idle between requests.
	IdleTimeoutMs int `koanf:"idle_timeout_ms"`
	// WriteTimeoutMs closes a connection whose client stops reading.
	WriteTimeoutMs int `koanf:"write_timeout_ms"`
	// MaxBodyBytes caps a request body: 413 when its length is declared
	// over it, a reset when it crosses it.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxResponseBodyBytes caps a response body (0 = no cap): 502 before
	// the head when its declared length is over it, a reset (RST_STREAM, or
	// an aborted HTTP/1.1 connection) when it crosses it mid-body; counted
	// in response_body_too_large_total.
	MaxResponseBodyBytes int64 `koanf:"max_response_body_bytes"`
	// MaxHeaderBytes caps a request head (431).
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxHeaderFields caps the number of fields in a head (431).
	MaxHeaderFields int `koanf:"max_header_fields"`
	// MaxURIBytes caps the request target (414).
	MaxURIBytes int `koanf:"max_uri_bytes"`
	// AllowDomainFronting, when false (the default), answers 421 Misdirected
	// Request on a TLS or QUIC listener when the host a request names (Host
	// or :authority, port dropped, case ignored) differs from the server
	// name the client sent in TLS SNI. A client that sent no SNI (one that
	// connected to an IP address) is not checked. True forwards such
	// requests (domain fronting).
	AllowDomainFronting bool `koanf:"allow_domain_fronting"`
}

// H2Security is [listeners.h2_security]: HTTP/2 limits and flood guards.
type H2Security struct {
	// MaxPendingAcceptResetStreams is the same rule as rapid_reset_threshold
	// (streams the client resets before their response is complete, per
	// window): when both are set the smaller wins; when one is set it is
	// the threshold.
	MaxPendingAcceptResetStreams int `koanf:"max_pending_accept_reset_streams"`
	// MaxLocalErrorResetStreams is how many streams one connection may make
	// us reset for its protocol errors (a malformed request, a stream
	// window overflow); the next one gets GOAWAY ENHANCE_YOUR_CALM.
	MaxLocalErrorResetStreams int `koanf:"max_local_error_reset_streams"`
	MaxConcurrentStreams      int `koanf:"max_concurrent_streams"` // SETTINGS_MAX_CONCURRENT_STREAMS; more streams are refused.
	MaxHeaderListSize         int `koanf:"max_header_list_size"`   // SETTINGS_MAX_HEADER_LIST_SIZE: decoded header block cap (HPACK bomb guard).
	// MaxSendBufSize is the response bytes one stream may hold toward the
	// client (queued and not yet written); past it the backend's side of
	// the stream waits.
	MaxSendBufSize int `koanf:"max_send_buf_size"`
	// KeepAliveIntervalMs sends a PING once the client has sent nothing for
	// this long (0 disables).
	KeepAliveIntervalMs *int `koanf:"keep_alive_interval_ms"`
	// KeepAliveTimeoutMs closes the connection (GOAWAY, then close) when
	// our PING is not acknowledged within this.
	KeepAliveTimeoutMs          int `koanf:"keep_alive_timeout_ms"`
	InitialStreamWindowSize     int `koanf:"initial_stream_window_size"`     // SETTINGS_INITIAL_WINDOW_SIZE we advertise.
	InitialConnectionWindowSize int `koanf:"initial_connection_window_size"` // Connection flow-control window we advertise.
	// RapidResetThreshold is how many client-reset streams in a 10 s window
	// trigger GOAWAY ENHANCE_YOUR_CALM; see max_pending_accept_reset_streams.
	RapidResetThreshold int `koanf:"rapid_reset_threshold"`
	// MaxContinuationFrames caps CONTINUATION frames per header block.
	MaxContinuationFrames int `koanf:"max_continuation_frames"`
	// ControlFramesPerSecond caps SETTINGS, PING, empty DATA, WINDOW_UPDATE
	// and PRIORITY frames per connection per second.
	ControlFramesPerSecond int `koanf:"control_frames_per_second"`
	// ZeroWindowTimeoutMs resets a stream whose peer keeps a zero window.
	ZeroWindowTimeoutMs int `koanf:"zero_window_timeout_ms"`
	// MaxStreamsPerConnection is the lifetime stream cap before a graceful
	// GOAWAY.
	MaxStreamsPerConnection int `koanf:"max_streams_per_connection"`
	// GlitchThreshold is the abuse score that closes a connection.
	GlitchThreshold int `koanf:"glitch_threshold"`
}

// WebSocket is [listeners.websocket] (h1, h1s and quic listeners): how the
// listener's HTTP/1.1 front relays WebSocket upgrades (RFC 6455). Without
// the block, upgrades are accepted under the defaults.
type WebSocket struct {
	Enabled                    *bool `koanf:"enabled"`                        // Accept WebSocket upgrades (false: an upgrade is served as a plain request, its Upgrade ignored).
	IdleTimeoutSeconds         int   `koanf:"idle_timeout_seconds"`           // Close a tunnel with no byte either way for this long, with Close 1001; seconds, > 0.
	MaxMessageSizeBytes        int   `koanf:"max_message_size_bytes"`         // Largest client message, all fragments together (Close 1009 past it; messages stream, never held); bytes, > 0.
	PingRateLimitPerWindow     int   `koanf:"ping_rate_limit_per_window"`     // Client PINGs allowed per window (Close 1008 past it); > 0.
	PingRateLimitWindowSeconds int   `koanf:"ping_rate_limit_window_seconds"` // The PING rate window; seconds, > 0.
	ReadFrameTimeoutSeconds    int   `koanf:"read_frame_timeout_seconds"`     // A client frame once begun must complete within this (Close 1008); seconds, > 0.
	MaxTunnels                 int   `koanf:"max_tunnels"`                    // Tunnels open at once on the listener; past it an upgrade gets 503 with Retry-After; > 0.
	MaxTunnelsPerIP            int   `koanf:"max_tunnels_per_ip"`             // Tunnels open at once from one client IP; past it 503 with Retry-After; > 0.
	H2ExtendedConnect          *bool `koanf:"h2_extended_connect"`            // WebSocket over HTTP/2 (RFC 8441): SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised to HTTP/2 clients and extended CONNECT opens a tunnel under HTTP/2 flow control (false: :protocol is refused as malformed, so clients use HTTP/1.1).
	H3ExtendedConnect          *bool `koanf:"h3_extended_connect"`            // WebSocket over HTTP/3 (RFC 9220) on a quic listener: SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised and extended CONNECT opens a tunnel (false: 501).
}

// GRPC is [listeners.grpc] (h1, h1s and quic listeners: every HTTP
// front). A request whose content-type is application/grpc or
// application/grpc+… is a gRPC call: the gateway's own errors for it are
// trailers-only gRPC responses, its grpc-timeout is clamped and enforced,
// and it is bounded by its deadline and the idle limits rather than the
// total timeout. Without the block a listener proxies gRPC with these
// defaults, except that health is not answered locally.
type GRPC struct {
	Enabled            *bool `koanf:"enabled"`              // gRPC-aware proxying (trailers-only local errors, deadline clamp, health, message cap, 415 on HTTP/1.1); false proxies gRPC as any HTTP request.
	MaxDeadlineSeconds int   `koanf:"max_deadline_seconds"` // A call's grpc-timeout is clamped to this, forwarded clamped and enforced (the backend stream canceled, DEADLINE_EXCEEDED answered); a call without one has no deadline and is bounded by the idle limits; > 0.
	HealthSynthesized  *bool `koanf:"health_synthesized"`   // /grpc.health.v1.Health/Check is answered by the gateway from the route's pool health (SERVING when a backend is available); Watch is UNIMPLEMENTED.
	MaxMessageBytes    int64 `koanf:"max_message_bytes"`    // Caps one gRPC message either way, read from its 5-byte prefix (never buffered); over it → RESOURCE_EXHAUSTED; 0: no cap; ≥ 0.
}

// Route is one [[listeners.routes]] entry: a host/path match to backends, a
// pool or a direct response.
type Route struct {
	// Name labels the route in metrics; defaults to host+path_prefix.
	Name string `koanf:"name"`
	// Host matches the request authority without port, case-insensitively;
	// "*.example.com" matches subdomains; empty matches any host.
	Host string `koanf:"host"`
	// PathPrefix matches the start of the path; empty matches any path.
	PathPrefix     string          `koanf:"path_prefix"`
	Backends       []Backend       `koanf:"backends"`        // This route's backends (round robin).
	Pool           string          `koanf:"pool"`            // Name of a [[pools]] entry serving this route.
	DirectResponse *DirectResponse `koanf:"direct_response"` // Answer from the gateway: { status, body, content_type }.
}

// DirectResponse answers a route from the gateway itself.
type DirectResponse struct {
	Status      int    `koanf:"status"`       // Status code of the direct response.
	Body        string `koanf:"body"`         // Body of the direct response.
	ContentType string `koanf:"content_type"` // Content-Type of the direct response.
}

// Runtime is [runtime]: process-wide settings.
type Runtime struct {
	XDPEnabled                 bool     `koanf:"xdp_enabled"`                      // Load and attach the XDP fast path.
	XDPInterface               string   `koanf:"xdp_interface"`                    // Interface to attach XDP to (required when enabled).
	XDPMode                    string   `koanf:"xdp_mode"`                         // auto (native, else generic), native (refuse to boot without it), generic or skb (= generic); hw (NIC offload) is a config error.
	XDPNewFlowCapPerSecPerCPU  int      `koanf:"xdp_new_flow_cap_per_sec_per_cpu"` // New flows per second per CPU above which XDP sheds new flows (0 disables).
	DrainTimeoutMs             int      `koanf:"drain_timeout_ms"`                 // Longest a drain waits for in-flight requests before closing them.
	ReadinessSettleMs          int      `koanf:"readiness_settle_ms"`              // On SIGTERM, /readyz fails this long before accepting stops.
	DrainJitterMs              *int     `koanf:"drain_jitter_ms"`                  // Idle keep-alive connections close, and H2/H3 ones get GOAWAY, each at a random moment in [0, this) of the drain (an HTTP/1.1 response in flight carries Connection: close at once); unset: a quarter of the drain timeout; 0: all at once.
	HandshakeTimeoutMs         int      `koanf:"handshake_timeout_ms"`             // TLS handshake deadline.
	ConnectTimeoutMs           int      `koanf:"connect_timeout_ms"`               // Backend connect deadline (502 past it).
	MaxInflightConnections     int      `koanf:"max_inflight_connections"`         // Connections the process holds at once; past it H1 gets 503 + Retry-After.
	PerIPConnectionCap         int      `koanf:"per_ip_connection_cap"`            // Connections one source IP may hold; past it the connection is closed.
	HeaderUnderscorePolicy     string   `koanf:"header_underscore_policy"`         // Request field names with _, on every front (HTTP/1.1, HTTP/2, HTTP/3): reject (400), drop (removed) or allow (forwarded).
	MaxKeepaliveRequests       int      `koanf:"max_keepalive_requests"`           // Requests per client connection before Connection: close (0 = no cap).
	MaxRequestsPerH3Connection int      `koanf:"max_requests_per_h3_connection"`   // Requests per HTTP/3 connection before GOAWAY (0 = no cap).
	TLS                        TLSOpts  `koanf:"tls"`
	Watchdog                   Watchdog `koanf:"watchdog"`
	DNS                        DNS      `koanf:"dns"`
	// UpstreamIdleTimeoutMs closes pooled backend connections idle this long.
	UpstreamIdleTimeoutMs int `koanf:"upstream_idle_timeout_ms"`
	// UpstreamMaxAgeMs retires pooled backend connections older than this.
	UpstreamMaxAgeMs int `koanf:"upstream_max_age_ms"`
	// UpstreamMaxIdlePerBackend caps idle pooled connections per backend.
	UpstreamMaxIdlePerBackend int `koanf:"upstream_max_idle_per_backend"`
}

// TLSOpts is [runtime.tls].
type TLSOpts struct {
	TLS13Only bool `koanf:"tls13_only"` // Refuse TLS 1.2.
}

// DNS is [runtime.dns]: how backends whose address host is a name (not an
// IP) are resolved. Every A and AAAA record of the name becomes a backend
// of the pool, re-resolved when the answer's TTL runs out.
type DNS struct {
	// Servers are the DNS servers asked (host:port); empty: the
	// nameservers of the system's resolver configuration (resolv.conf),
	// whose search list and ndots then expand a short name.
	Servers []string `koanf:"servers"`
	// TimeoutMs bounds one query to one server.
	TimeoutMs int `koanf:"timeout_ms"`
	// MinTTLMs is the soonest a name is re-resolved after a lookup,
	// whatever the answer's TTL; a failed lookup is retried after it.
	MinTTLMs int `koanf:"min_ttl_ms"`
	// MaxTTLMs is the latest a name is re-resolved after a lookup,
	// whatever the answer's TTL; at least min_ttl_ms.
	MaxTTLMs int `koanf:"max_ttl_ms"`
}

// Watchdog is [runtime.watchdog].
type Watchdog struct {
	// HeaderDeadlineMs is accepted for compatibility with Rust ExpressGateway configs; the
	// head deadline is [listeners.http].header_timeout_ms.
	HeaderDeadlineMs int `koanf:"header_deadline_ms"`
	// BodyProgressMinBps is the minimum body rate, averaged over a sliding
	// window, below which a request body upload is cut off (slow POST).
	// 0 disables the rate floor.
	BodyProgressMinBps int `koanf:"body_progress_min_bps"`
	// SweepIntervalMs is the granularity of the rate window.
	SweepIntervalMs int `koanf:"sweep_interval_ms"`
}

// Observability is [observability].
type Observability struct {
	// MetricsBind is the admin listener's host:port (metrics and probes),
	// by convention 127.0.0.1:9901 (Envoy's admin port; 9090 is
	// Prometheus's own); empty turns the admin listener off.
	MetricsBind string `koanf:"metrics_bind"`
	// AccessLog writes one log line per request.
	AccessLog *bool `koanf:"access_log"`
	// AccessLogFormat is the access log's line format: json (stable field
	// names: time, client, listener, protocol, tls_version, tls_cipher,
	// sni, method, host, path, tunnel, status, ws_close_code, grpc_status,
	// bytes_in, bytes_out, duration_seconds, route, pool, upstream_addr,
	// upstream_status, upstream_head_seconds, upstream_connect_seconds
	// (present when the request's try had to connect), retries,
	// user_agent, referer, request_id, error; a field with nothing to say
	// is left out), combined (nginx's, for log tooling that parses it) or
	// common.
	AccessLogFormat string `koanf:"access_log_format"`
	// AccessLogPath is the file the access log appends to (created 0640),
	// reopened on SIGHUP so that logrotate can move it; empty is stderr.
	// Lines go through a bounded queue: when the disk stalls they are
	// dropped and counted (access_log_dropped_total), never queued
	// without bound or waited for by a request.
	AccessLogPath string `koanf:"access_log_path"`
	// TrustRequestID keeps a well-formed X-Request-ID a client sends (up
	// to 128 of A-Z a-z 0-9 - _ . : @ +); off, or when it is malformed, the
	// gateway generates one (a UUIDv7). Either way it is forwarded to the
	// backend, returned to the client and logged.
	TrustRequestID *bool `koanf:"trust_request_id"`
	// Tracing is [observability.tracing]: OpenTelemetry traces of HTTP
	// requests, off while otlp_endpoint is empty.
	Tracing Tracing `koanf:"tracing"`
}

// Tracing is [observability.tracing]. With otlp_endpoint set, each sampled
// HTTP request gets a server span (continuing the client's W3C
// traceparent, or starting a trace) and a client span per upstream
// attempt, whose traceparent the backend receives; spans are exported in
// batches through a bounded queue that drops, counted in
// tracing_spans_dropped_total, rather than wait. Off (and for a request
// not sampled) traceparent and tracestate reach the backend untouched.
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP traces URL spans are posted to, http
	// or https (http://127.0.0.1:4318/v1/traces; without a path,
	// /v1/traces). Spans wait in a queue of at most 2048; past it they are
	// dropped and counted (tracing_spans_dropped_total), never waited
	// for. Empty turns tracing off: traceparent and tracestate then reach
	// the backend untouched.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// SampleRatio is the fraction of requests traced, 0 to 1, decided from
	// the trace id (so that hops with the same ratio agree on a trace),
	// whatever the client's sampled flag. A request not traced keeps its
	// traceparent and tracestate as they came.
	SampleRatio float64 `koanf:"sample_ratio"`
	// ServiceName is the service.name of the spans' resource. Required.
	ServiceName string `koanf:"service_name"`
}

// Admin is [admin].
type Admin struct {
	// APITokenHash is the SHA-256 hex of the bearer token that /metrics,
	// /status, /config and /debug/pprof/ require once set.
	APITokenHash string `koanf:"api_token_hash"`
	// AllowNonLoopback permits a non-loopback metrics_bind (requires
	// api_token_hash).
	AllowNonLoopback bool `koanf:"allow_non_loopback"`
}

// Security is [security].
type Security struct {
	// StrictTE answers 501 to a request whose Transfer-Encoding is anything
	// but "chunked" (400 for the smuggling forms: with Content-Length,
	// chunked not last or twice). Off, codings before chunked
	// ("gzip, chunked") are forwarded intact to HTTP/1.1 backends and
	// answered 501 for HTTP/2 and HTTP/3 ones. A backend's response is
	// always held to it (502): a coding is never dropped.
	StrictTE bool `koanf:"strict_te"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is kept and appended
	// to; from anyone else it is replaced.
	TrustedProxies []string `koanf:"trusted_proxies"`
}
