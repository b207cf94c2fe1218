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

	// File is the path the config was loaded from (not a TOML key).
	File string `koanf:"-"`
}

// Listener is one [[listeners]] entry.
type Listener struct {
	// Name labels the listener in metrics and logs; defaults to the address.
	Name string `koanf:"name"`
	// Address is host:port to bind (IPv6 bracketed). Required.
	Address string `koanf:"address"`
	// Protocol is tcp (L4 relay), tls (terminate TLS, relay bytes), udp (L4
	// datagram relay), h1 (HTTP/1.1 and h2c prior knowledge), h1s (TLS with
	// ALPN h2 and http/1.1) or quic (HTTP/3). Required.
	Protocol string `koanf:"protocol"`
	// DrainTimeoutMs overrides [runtime].drain_timeout_ms for this listener.
	DrainTimeoutMs *int `koanf:"drain_timeout_ms"`
	// DrainJitterMs overrides [runtime].drain_jitter_ms for this listener.
	DrainJitterMs *int `koanf:"drain_jitter_ms"`

	TLS      *ListenerTLS `koanf:"tls"`
	QUIC     *QUIC        `koanf:"quic"`
	AltSvc   *AltSvc      `koanf:"alt_svc"`
	HTTP     HTTP         `koanf:"http"`
	H2       H2Security   `koanf:"h2_security"`
	WS       *WebSocket   `koanf:"websocket"`
	GRPC     *GRPC        `koanf:"grpc"`
	Backends []Backend    `koanf:"backends"`
	// Pool names a [[pools]] entry used as the default route (instead of
	// backends).
	Pool string `koanf:"pool"`
	// Routes are matched in order; the first match wins. The listener's own
	// backends (or pool) are the default route when none matches.
	Routes []Route `koanf:"routes"`
}

// ListenerTLS is [listeners.tls]: the certificate of a tls or h1s listener.
type ListenerTLS struct {
	// CertPath is the PEM certificate chain. Required.
	CertPath string `koanf:"cert_path"`
	// KeyPath is the PEM private key; it must not be readable by group or
	// other. Required.
	KeyPath string `koanf:"key_path"`
	// TicketRotationIntervalSeconds is how often session-ticket keys rotate.
	TicketRotationIntervalSeconds int `koanf:"ticket_rotation_interval_seconds"`
	// TicketRotationOverlapSeconds is how long the previous key still decrypts.
	TicketRotationOverlapSeconds int `koanf:"ticket_rotation_overlap_seconds"`
}

// QUIC is [listeners.quic]: HTTP/3 termination settings.
type QUIC struct {
	CertPath               string `koanf:"cert_path"`
	KeyPath                string `koanf:"key_path"`
	RetrySecretPath        string `koanf:"retry_secret_path"`
	MaxIdleTimeoutMs       int    `koanf:"max_idle_timeout_ms"`
	MaxRecvUDPPayloadSize  int    `koanf:"max_recv_udp_payload_size"`
	Allow0RTT              bool   `koanf:"allow_0rtt"`
	EarlyDataPolicy        string `koanf:"early_data_policy"`
	MaxConnectionsPerIP    int    `koanf:"max_connections_per_ip"`
	MaxConnections         int    `koanf:"max_connections"`
	RetryAboveNewConnsPerS int    `koanf:"retry_above_new_conns_per_sec"`
	MaxFieldSectionSize    int    `koanf:"max_field_section_size"`
}

// AltSvc is [listeners.alt_svc]: advertise an HTTP/3 endpoint on H1/H2
// responses.
type AltSvc struct {
	H3Port int `koanf:"h3_port"`
	MaxAge int `koanf:"max_age"`
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
	// MaxBodyBytes caps a request body (413) and a response body (reset).
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxHeaderBytes caps a request head (431).
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxHeaderFields caps the number of fields in a head (431).
	MaxHeaderFields int `koanf:"max_header_fields"`
	// MaxURIBytes caps the request target (414).
	MaxURIBytes int `koanf:"max_uri_bytes"`
}

// H2Security is [listeners.h2_security]: HTTP/2 limits and flood guards.
type H2Security struct {
	MaxPendingAcceptResetStreams int `koanf:"max_pending_accept_reset_streams"`
	MaxLocalErrorResetStreams    int `koanf:"max_local_error_reset_streams"`
	MaxConcurrentStreams         int `koanf:"max_concurrent_streams"`
	MaxHeaderListSize            int `koanf:"max_header_list_size"`
	MaxSendBufSize               int `koanf:"max_send_buf_size"`
	KeepAliveIntervalMs          int `koanf:"keep_alive_interval_ms"`
	KeepAliveTimeoutMs           int `koanf:"keep_alive_timeout_ms"`
	InitialStreamWindowSize      int `koanf:"initial_stream_window_size"`
	InitialConnectionWindowSize  int `koanf:"initial_connection_window_size"`
	// RapidResetThreshold is how many client-reset streams in the window
	// trigger GOAWAY ENHANCE_YOUR_CALM.
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

// WebSocket is [listeners.websocket].
type WebSocket struct {
	Enabled                    *bool `koanf:"enabled"`
	IdleTimeoutSeconds         int   `koanf:"idle_timeout_seconds"`
	MaxMessageSizeBytes        int   `koanf:"max_message_size_bytes"`
	PingRateLimitPerWindow     int   `koanf:"ping_rate_limit_per_window"`
	PingRateLimitWindowSeconds int   `koanf:"ping_rate_limit_window_seconds"`
	ReadFrameTimeoutSeconds    int   `koanf:"read_frame_timeout_seconds"`
	H2ExtendedConnect          bool  `koanf:"h2_extended_connect"`
	H3ExtendedConnect          bool  `koanf:"h3_extended_connect"`
}

// GRPC is [listeners.grpc].
type GRPC struct {
	Enabled            *bool `koanf:"enabled"`
	MaxDeadlineSeconds int   `koanf:"max_deadline_seconds"`
	HealthSynthesized  *bool `koanf:"health_synthesized"`
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
	Backends       []Backend       `koanf:"backends"`
	Pool           string          `koanf:"pool"`
	DirectResponse *DirectResponse `koanf:"direct_response"`
}

// DirectResponse answers a route from the gateway itself.
type DirectResponse struct {
	Status      int    `koanf:"status"`
	Body        string `koanf:"body"`
	ContentType string `koanf:"content_type"`
}

// Runtime is [runtime]: process-wide settings.
type Runtime struct {
	XDPEnabled                 bool     `koanf:"xdp_enabled"`
	XDPInterface               string   `koanf:"xdp_interface"`
	XDPMode                    string   `koanf:"xdp_mode"`
	XDPNewFlowCapPerSecPerCPU  int      `koanf:"xdp_new_flow_cap_per_sec_per_cpu"`
	DrainTimeoutMs             int      `koanf:"drain_timeout_ms"`
	ReadinessSettleMs          int      `koanf:"readiness_settle_ms"`
	DrainJitterMs              *int     `koanf:"drain_jitter_ms"`
	HandshakeTimeoutMs         int      `koanf:"handshake_timeout_ms"`
	ConnectTimeoutMs           int      `koanf:"connect_timeout_ms"`
	MaxInflightConnections     int      `koanf:"max_inflight_connections"`
	PerIPConnectionCap         int      `koanf:"per_ip_connection_cap"`
	HeaderUnderscorePolicy     string   `koanf:"header_underscore_policy"`
	MaxKeepaliveRequests       int      `koanf:"max_keepalive_requests"`
	MaxRequestsPerH3Connection int      `koanf:"max_requests_per_h3_connection"`
	TLS                        TLSOpts  `koanf:"tls"`
	Watchdog                   Watchdog `koanf:"watchdog"`
	// UpstreamIdleTimeoutMs closes pooled backend connections idle this long.
	UpstreamIdleTimeoutMs int `koanf:"upstream_idle_timeout_ms"`
	// UpstreamMaxAgeMs retires pooled backend connections older than this.
	UpstreamMaxAgeMs int `koanf:"upstream_max_age_ms"`
	// UpstreamMaxIdlePerBackend caps idle pooled connections per backend.
	UpstreamMaxIdlePerBackend int `koanf:"upstream_max_idle_per_backend"`
}

// TLSOpts is [runtime.tls].
type TLSOpts struct {
	TLS13Only bool `koanf:"tls13_only"`
}

// Watchdog is [runtime.watchdog].
type Watchdog struct {
	// HeaderDeadlineMs is accepted for compatibility with the reference; the
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
	// MetricsBind is the admin listener's host:port (metrics and probes);
	// empty turns the admin listener off.
	MetricsBind string `koanf:"metrics_bind"`
	// AccessLog writes one log line per request.
	AccessLog *bool `koanf:"access_log"`
}

// Admin is [admin].
type Admin struct {
	// APITokenHash is the SHA-256 hex of the bearer token that /metrics
	// requires once set.
	APITokenHash string `koanf:"api_token_hash"`
	// AllowNonLoopback permits a non-loopback metrics_bind (requires
	// api_token_hash).
	AllowNonLoopback bool `koanf:"allow_non_loopback"`
}

// Security is [security].
type Security struct {
	// StrictTE rejects any Transfer-Encoding other than exactly "chunked".
	StrictTE bool `koanf:"strict_te"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is kept and appended
	// to; from anyone else it is replaced.
	TrustedProxies []string `koanf:"trusted_proxies"`
}
