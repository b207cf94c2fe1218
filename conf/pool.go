package conf

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Algorithms are the balancing algorithms a pool may name in `algorithm`.
// Each is one file in stages/route.
var Algorithms = []string{
	"round_robin", "least_conn", "least_request", "random", "p2c", "ewma",
	"ring_hash", "maglev", "source_ip", "sticky",
}

// HashAlgorithms are the algorithms that read `hash_key`.
var HashAlgorithms = []string{"ring_hash", "maglev"}

// Backend protocols.
var backendProtocols = []string{"tcp", "h1", "h2", "h3", "udp", "quic"}

// Limits and defaults of the pool section.
const (
	// MaxBackendWeight bounds a backend's weight; it keeps the smooth
	// round-robin schedule and the hash rings small (weight × backends).
	MaxBackendWeight = 1000

	DefaultAlgorithm       = "round_robin"
	DefaultHashKey         = "source_ip"
	DefaultBackendProtocol = "tcp"
	DefaultBackendWeight   = 1

	DefaultHealthInterval = 5000 // ms
	DefaultHealthTimeout  = 2000 // ms
	DefaultHealthRise     = 2
	DefaultHealthFall     = 3
	DefaultHealthPath     = "/"
	DefaultHealthMethod   = "GET"

	DefaultOutlierConsecutive5xx     = 5
	DefaultOutlierConsecutiveGateway = 5
	DefaultOutlierConsecutiveConnect = 5
	DefaultOutlierBaseEjectionMs     = 30_000
	DefaultOutlierMaxEjectionMs      = 300_000
	DefaultOutlierMaxEjectedPercent  = 10 // Envoy's default
	DefaultOutlierIntervalMs         = 1000

	// DefaultPanicThresholdPercent is Envoy's healthy_panic_threshold: below
	// this share of healthy backends the pool routes to all of them.
	DefaultPanicThresholdPercent = 50

	DefaultRetryAttempts         = 2
	DefaultRetryBudgetPercent    = 20 // Linkerd's retryRatio 0.2
	DefaultRetryMinRetriesPerSec = 10 // Linkerd's minRetriesPerSecond
	// DefaultRetryMaxReplayBodyBytes is the request body a retry may hold
	// to send again: small POSTs are retried, uploads are not.
	DefaultRetryMaxReplayBodyBytes = 64 << 10
	// MaxRetryReplayBodyBytes bounds the key: each request in flight may
	// hold this much memory on top of the bus budgets.
	MaxRetryReplayBodyBytes = 16 << 20

	DefaultCircuitMax = 1024 // Envoy's default for each breaker

	DefaultStickyCookie = "eg_sticky"
	DefaultStickyTTLSec = 3600
)

// Pool is one `[[pools]]` entry: a named group of backends with its
// balancing algorithm, health checks, outlier detection, retry policy and
// circuit breakers. A listener or route uses it with `pool = "NAME"`.
type Pool struct {
	// Name is how listeners and routes refer to the pool.
	Name string `koanf:"name"`
	// Algorithm is one of Algorithms; default round_robin.
	Algorithm string `koanf:"algorithm"`
	// HashKey is what ring_hash and maglev hash: "source_ip" (default),
	// "header:NAME", "cookie:NAME" or "path".
	HashKey string `koanf:"hash_key"`
	// Backends are the pool's members; at least one.
	Backends []Backend `koanf:"backends"`
	// HealthCheck enables active health checks.
	HealthCheck *HealthCheck `koanf:"health_check"`
	// Outlier enables passive outlier detection fed by live traffic.
	Outlier *Outlier `koanf:"outlier"`
	// Retry sets the retry policy; absent means the defaults.
	Retry *Retry `koanf:"retry"`
	// Circuit sets per-backend circuit breakers; absent means no limits.
	Circuit *Circuit `koanf:"circuit_breaker"`
	// Sticky sets the session cookie of the sticky algorithm.
	Sticky *Sticky `koanf:"sticky"`
	// SlowStartMs ramps a new or recovered backend's weight from 10% to
	// 100% over this many milliseconds; 0 turns slow start off.
	SlowStartMs int `koanf:"slow_start_ms"`
	// PanicThresholdPercent: when fewer than this percentage of backends are
	// healthy, the pool routes to all of them (Envoy's panic mode), since a
	// few overloaded survivors are worse than trying everyone. Default 50;
	// 0 turns panic mode off.
	PanicThresholdPercent *int `koanf:"panic_threshold_percent"`
}

// Backend is one upstream server, in a pool or listed on a listener.
type Backend struct {
	Address           string `koanf:"address"`             // host:port; a host that is a DNS name (not localhost) stands for every A and AAAA address it resolves to, followed on the answer's TTL ([runtime.dns])
	Protocol          string `koanf:"protocol"`            // tcp|h1|h2|h3|udp|quic, default tcp (quic: a raw_proxy listener's QUIC server, any ALPN)
	Weight            int    `koanf:"weight"`              // default 1, 1..1000
	TLS               bool   `koanf:"tls"`                 // TLS to the backend
	TLSCAPath         string `koanf:"tls_ca_path"`         // CA bundle to verify the backend
	TLSVerifyHostname string `koanf:"tls_verify_hostname"` // name to verify instead of the address host
	TLSVerifyPeer     *bool  `koanf:"tls_verify_peer"`     // default true
	// SRV, instead of address, is a DNS SRV name (_http._tcp.service.example):
	// the entry stands for every target of the records' lowest priority, at
	// the record's port and with its weight (0 counts as 1), followed on the
	// answers' TTL ([runtime.dns]).
	SRV string `koanf:"srv"`
}

// HealthCheck is `[pools.health_check]`: active probes.
type HealthCheck struct {
	// Type is http, tcp or grpc (a pool of quic backends: http, sent over
	// HTTP/3).
	Type string `koanf:"type"`
	// Path and Method of an http check; default "/" and GET.
	Path   string `koanf:"path"`
	Method string `koanf:"method"` // HTTP method of the probe.
	// ExpectStatus is the status an http check wants; 0 accepts 200..399.
	ExpectStatus int `koanf:"expect_status"`
	// BodyContains, when set, must occur in the first 64 KiB of the body.
	BodyContains string `koanf:"body_contains"`
	// Host overrides the Host header of an http check.
	Host string `koanf:"host"`
	// Service is the grpc.health.v1 service name; "" asks about the server.
	Service string `koanf:"service"`
	// IntervalMs between probes of one backend (default 5000), TimeoutMs per
	// probe (default 2000, < interval).
	IntervalMs int `koanf:"interval_ms"`
	TimeoutMs  int `koanf:"timeout_ms"` // Probe deadline.
	// Rise consecutive passes mark a backend up (default 2); Fall
	// consecutive failures mark it down (default 3).
	Rise int `koanf:"rise"`
	Fall int `koanf:"fall"` // Consecutive failures that mark a backend down.
}

// Outlier is `[pools.outlier]`: passive detection from live responses.
type Outlier struct {
	// Consecutive5xx responses eject a backend (default 5; 0 off).
	Consecutive5xx int `koanf:"consecutive_5xx"`
	// ConsecutiveGatewayErrors (502, 503, 504 or a failed exchange) eject a
	// backend (default 5; 0 off).
	ConsecutiveGatewayErrors int `koanf:"consecutive_gateway_errors"`
	// ConsecutiveConnectFailures eject a backend (default 5; 0 off).
	ConsecutiveConnectFailures int `koanf:"consecutive_connect_failures"`
	// BaseEjectionMs × the number of recent ejections is how long a backend
	// stays out (default 30000), capped at MaxEjectionMs (default 300000).
	BaseEjectionMs int `koanf:"base_ejection_ms"`
	MaxEjectionMs  int `koanf:"max_ejection_ms"` // Cap on one ejection's length.
	// MaxEjectedPercent of the pool may be ejected at once (default 10; at
	// least one backend may always be ejected).
	MaxEjectedPercent int `koanf:"max_ejected_percent"`
	// IntervalMs is how often ejections are reviewed (default 1000).
	IntervalMs int `koanf:"interval_ms"`
}

// Retry is `[pools.retry]`.
type Retry struct {
	// Attempts is the number of retries after the first try (default 2;
	// 0 never retries).
	Attempts *int `koanf:"attempts"`
	// PerTryTimeoutMs bounds each try; 0 leaves only the request timeout.
	PerTryTimeoutMs int `koanf:"per_try_timeout_ms"`
	// BudgetPercent: retries may be at most this percentage of the requests
	// of the last 10 s (default 20; a retry of a try the backend never
	// started, connect refused or REFUSED_STREAM, spends none) ...
	BudgetPercent int `koanf:"budget_percent"`
	// MinRetriesPerSec ... plus this many per second (default 10), so that
	// a quiet pool can still retry.
	MinRetriesPerSec int `koanf:"min_retries_per_sec"`
	// OnStatus are backend response statuses retried (idempotent requests
	// without a body only); default [502, 503].
	OnStatus []int `koanf:"on_status"`
	// MaxReplayBodyBytes is the largest request body kept while it streams
	// to a try, so that a try whose backend provably never processed the
	// request (connect refused, REFUSED_STREAM, GOAWAY past its stream,
	// H3_REQUEST_REJECTED) is retried with the body sent again. A body
	// declared or grown past it is not kept, and such a request is not
	// retried (the client gets the failure, 502). 0 never retries a request
	// with a body; at most 16 MiB.
	MaxReplayBodyBytes *int64 `koanf:"max_replay_body_bytes"`
}

// Circuit is `[pools.circuit_breaker]`: per-backend limits; past one the
// request gets 503 and circuit_open_total counts it. 0 means no limit.
type Circuit struct {
	MaxConnections int `koanf:"max_connections"` // Open connections per backend (L4) past which it is skipped.
	MaxPending     int `koanf:"max_pending"`     // Requests waiting for a connection per backend.
	MaxRequests    int `koanf:"max_requests"`    // Active requests per backend; past it 503.
}

// Sticky is `[pools.sticky]`, the session cookie of the sticky algorithm.
type Sticky struct {
	Cookie string `koanf:"cookie"`  // default eg_sticky
	TTLSec int    `koanf:"ttl_sec"` // Max-Age, default 3600; 0 = session cookie
	// Fallback is the algorithm picking a backend for a request without a
	// valid cookie (default round_robin; not sticky or a hashing one).
	Fallback string `koanf:"fallback"`
}

func poolIntp(v int) *int { return &v }

// setDefaults fills every unset field of the pool and its sections.
func (p *Pool) setDefaults() {
	if p.Algorithm == "" {
		p.Algorithm = DefaultAlgorithm
	}
	if p.HashKey == "" {
		p.HashKey = DefaultHashKey
	}
	for i := range p.Backends {
		p.Backends[i].setDefaults()
	}
	if p.PanicThresholdPercent == nil {
		p.PanicThresholdPercent = poolIntp(DefaultPanicThresholdPercent)
	}
	if h := p.HealthCheck; h != nil {
		if h.Type == "" {
			h.Type = "tcp"
		}
		if h.Type == "http" {
			if h.Path == "" {
				h.Path = DefaultHealthPath
			}
			if h.Method == "" {
				h.Method = DefaultHealthMethod
			}
		}
		if h.IntervalMs == 0 {
			h.IntervalMs = DefaultHealthInterval
		}
		if h.TimeoutMs == 0 {
			h.TimeoutMs = min(DefaultHealthTimeout, h.IntervalMs)
		}
		if h.Rise == 0 {
			h.Rise = DefaultHealthRise
		}
		if h.Fall == 0 {
			h.Fall = DefaultHealthFall
		}
	}
	if o := p.Outlier; o != nil {
		if o.Consecutive5xx == 0 {
			o.Consecutive5xx = DefaultOutlierConsecutive5xx
		}
		if o.ConsecutiveGatewayErrors == 0 {
			o.ConsecutiveGatewayErrors = DefaultOutlierConsecutiveGateway
		}
		if o.ConsecutiveConnectFailures == 0 {
			o.ConsecutiveConnectFailures = DefaultOutlierConsecutiveConnect
		}
		if o.BaseEjectionMs == 0 {
			o.BaseEjectionMs = DefaultOutlierBaseEjectionMs
		}
		if o.MaxEjectionMs == 0 {
			o.MaxEjectionMs = max(DefaultOutlierMaxEjectionMs, o.BaseEjectionMs)
		}
		if o.MaxEjectedPercent == 0 {
			o.MaxEjectedPercent = DefaultOutlierMaxEjectedPercent
		}
		if o.IntervalMs == 0 {
			o.IntervalMs = DefaultOutlierIntervalMs
		}
	}
	if p.Retry == nil {
		p.Retry = &Retry{}
	}
	if r := p.Retry; r != nil {
		if r.Attempts == nil {
			r.Attempts = poolIntp(DefaultRetryAttempts)
		}
		if r.BudgetPercent == 0 {
			r.BudgetPercent = DefaultRetryBudgetPercent
		}
		if r.MinRetriesPerSec == 0 {
			r.MinRetriesPerSec = DefaultRetryMinRetriesPerSec
		}
		if r.OnStatus == nil {
			r.OnStatus = []int{502, 503}
		}
		if r.MaxReplayBodyBytes == nil {
			v := int64(DefaultRetryMaxReplayBodyBytes)
			r.MaxReplayBodyBytes = &v
		}
	}
	if p.Algorithm == "sticky" && p.Sticky == nil {
		p.Sticky = &Sticky{}
	}
	if s := p.Sticky; s != nil {
		if s.Cookie == "" {
			s.Cookie = DefaultStickyCookie
		}
		if s.TTLSec == 0 {
			s.TTLSec = DefaultStickyTTLSec
		}
		if s.Fallback == "" {
			s.Fallback = DefaultAlgorithm
		}
	}
}

// validate records every problem of the pool under key (e.g. "pools[0]").
// Call setDefaults first.
// checkDuplicateBackends refuses a backend listed twice in one set (a
// pool's, a listener's or a route's): the balancer keys backends by
// protocol and address.
func checkDuplicateBackends(k string, bs []Backend, ps *Problems) {
	seen := make(map[string]int, len(bs))
	for i := range bs {
		id := bs[i].Protocol + "://" + bs[i].Address + bs[i].SRV
		if j, dup := seen[id]; dup {
			ps.Addf(key(idx(k, i), "address"), "duplicate of backends[%d]", j)
		}
		seen[id] = i
	}
}

func (p *Pool) validate(k string, ps *Problems) {
	if p.Name == "" {
		ps.Addf(key(k, "name"), "a pool needs a name")
	} else if strings.Trim(p.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		ps.Addf(key(k, "name"), "pool name %q: use letters, digits, '_', '.' and '-' only", p.Name)
	}
	if !slices.Contains(Algorithms, p.Algorithm) {
		ps.Addf(key(k, "algorithm"), "unknown algorithm %q (want one of %s)", p.Algorithm, strings.Join(Algorithms, ", "))
	}
	if slices.Contains(HashAlgorithms, p.Algorithm) || p.HashKey != DefaultHashKey {
		if !poolHashKey(p.HashKey) {
			ps.Addf(key(k, "hash_key"), "unknown hash key %q (want source_ip, path, header:NAME or cookie:NAME)", p.HashKey)
		}
	}
	if len(p.Backends) == 0 {
		ps.Addf(key(k, "backends"), "a pool needs at least one backend")
	}
	for i := range p.Backends {
		p.Backends[i].validate(idx(key(k, "backends"), i), ps)
	}
	checkDuplicateBackends(key(k, "backends"), p.Backends, ps)
	if p.SlowStartMs < 0 {
		ps.Addf(key(k, "slow_start_ms"), "must be ≥ 0, got %d", p.SlowStartMs)
	}
	if t := p.PanicThresholdPercent; t != nil && (*t < 0 || *t > 100) {
		ps.Addf(key(k, "panic_threshold_percent"), "must be 0..100, got %d", *t)
	}
	if h := p.HealthCheck; h != nil {
		hk := key(k, "health_check")
		switch h.Type {
		case "http":
			if !strings.HasPrefix(h.Path, "/") {
				ps.Addf(key(hk, "path"), "must start with /, got %q", h.Path)
			}
			if !poolToken(h.Method) {
				ps.Addf(key(hk, "method"), "invalid method %q", h.Method)
			}
			if h.ExpectStatus != 0 && (h.ExpectStatus < 100 || h.ExpectStatus > 599) {
				ps.Addf(key(hk, "expect_status"), "must be 100..599, got %d", h.ExpectStatus)
			}
		case "tcp", "grpc":
		default:
			ps.Addf(key(hk, "type"), "unknown health check type %q (want http, tcp or grpc)", h.Type)
		}
		if h.IntervalMs < 10 {
			ps.Addf(key(hk, "interval_ms"), "must be ≥ 10, got %d", h.IntervalMs)
		}
		if h.TimeoutMs <= 0 || h.TimeoutMs > h.IntervalMs {
			ps.Addf(key(hk, "timeout_ms"), "must be in 1..interval_ms (%d), got %d", h.IntervalMs, h.TimeoutMs)
		}
		if h.Rise < 1 {
			ps.Addf(key(hk, "rise"), "must be ≥ 1, got %d", h.Rise)
		}
		if h.Fall < 1 {
			ps.Addf(key(hk, "fall"), "must be ≥ 1, got %d", h.Fall)
		}
	}
	if o := p.Outlier; o != nil {
		ok := key(k, "outlier")
		for _, f := range []struct {
			name string
			v    int
		}{
			{"consecutive_5xx", o.Consecutive5xx},
			{"consecutive_gateway_errors", o.ConsecutiveGatewayErrors},
			{"consecutive_connect_failures", o.ConsecutiveConnectFailures},
		} {
			if f.v < 0 {
				ps.Addf(key(ok, f.name), "must be ≥ 0, got %d", f.v)
			}
		}
		if o.BaseEjectionMs < 1 {
			ps.Addf(key(ok, "base_ejection_ms"), "must be ≥ 1, got %d", o.BaseEjectionMs)
		}
		if o.MaxEjectionMs < o.BaseEjectionMs {
			ps.Addf(key(ok, "max_ejection_ms"), "must be ≥ base_ejection_ms (%d), got %d", o.BaseEjectionMs, o.MaxEjectionMs)
		}
		if o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
			ps.Addf(key(ok, "max_ejected_percent"), "must be 0..100, got %d", o.MaxEjectedPercent)
		}
		if o.IntervalMs < 10 {
			ps.Addf(key(ok, "interval_ms"), "must be ≥ 10, got %d", o.IntervalMs)
		}
	}
	if r := p.Retry; r != nil {
		rk := key(k, "retry")
		if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > 10) {
			ps.Addf(key(rk, "attempts"), "must be 0..10, got %d", *r.Attempts)
		}
		if r.PerTryTimeoutMs < 0 {
			ps.Addf(key(rk, "per_try_timeout_ms"), "must be ≥ 0, got %d", r.PerTryTimeoutMs)
		}
		if r.BudgetPercent < 0 || r.BudgetPercent > 100 {
			ps.Addf(key(rk, "budget_percent"), "must be 0..100, got %d", r.BudgetPercent)
		}
		if r.MinRetriesPerSec < 0 {
			ps.Addf(key(rk, "min_retries_per_sec"), "must be ≥ 0, got %d", r.MinRetriesPerSec)
		}
		if v := r.MaxReplayBodyBytes; v != nil && (*v < 0 || *v > MaxRetryReplayBodyBytes) {
			ps.Addf(key(rk, "max_replay_body_bytes"), "must be 0..%d, got %d", MaxRetryReplayBodyBytes, *v)
		}
		for i, s := range r.OnStatus {
			if s < 500 || s > 599 {
				ps.Addf(idx(key(rk, "on_status"), i), "must be a 5xx status, got %d", s)
			}
		}
	}
	if c := p.Circuit; c != nil {
		ck := key(k, "circuit_breaker")
		for _, f := range []struct {
			name string
			v    int
		}{{"max_connections", c.MaxConnections}, {"max_pending", c.MaxPending}, {"max_requests", c.MaxRequests}} {
			if f.v < 0 {
				ps.Addf(key(ck, f.name), "must be ≥ 0 (0 = no limit), got %d", f.v)
			}
		}
	}
	if s := p.Sticky; s != nil {
		sk := key(k, "sticky")
		if !poolToken(s.Cookie) {
			ps.Addf(key(sk, "cookie"), "invalid cookie name %q", s.Cookie)
		}
		if s.TTLSec < 0 {
			ps.Addf(key(sk, "ttl_sec"), "must be ≥ 0, got %d", s.TTLSec)
		}
		if s.Fallback == "sticky" || slices.Contains(HashAlgorithms, s.Fallback) || !slices.Contains(Algorithms, s.Fallback) {
			ps.Addf(key(sk, "fallback"), "invalid fallback %q (want a non-hashing, non-sticky algorithm)", s.Fallback)
		}
	}
}

// setDefaults fills a backend's unset fields.
func (b *Backend) setDefaults() {
	if b.Protocol == "" {
		b.Protocol = DefaultBackendProtocol
	}
	if b.Weight == 0 {
		b.Weight = DefaultBackendWeight
	}
	if b.TLSVerifyPeer == nil {
		t := true
		b.TLSVerifyPeer = &t
	}
}

// validate records every problem of the backend under key (e.g.
// "pools[0].backends[2]"). Call setDefaults first.
func (b *Backend) validate(k string, ps *Problems) {
	if b.SRV != "" {
		if b.Address != "" {
			ps.Addf(key(k, "srv"), "srv and address exclude each other: the SRV records give the addresses and ports")
		}
		if _, ok := dns.IsDomainName(b.SRV); !ok || !strings.HasPrefix(b.SRV, "_") || strings.Count(strings.TrimSuffix(b.SRV, "."), ".") < 2 {
			ps.Addf(key(k, "srv"), "want an SRV name such as _http._tcp.service.example, got %q", b.SRV)
		}
	} else if host, port, err := net.SplitHostPort(b.Address); err != nil || host == "" {
		ps.Addf(key(k, "address"), "want host:port, got %q", b.Address)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		ps.Addf(key(k, "address"), "port must be 1..65535, got %q", port)
	}
	if !slices.Contains(backendProtocols, b.Protocol) {
		ps.Addf(key(k, "protocol"), "unknown backend protocol %q (want one of %s)", b.Protocol, strings.Join(backendProtocols, ", "))
	}
	if b.Weight < 1 || b.Weight > MaxBackendWeight {
		ps.Addf(key(k, "weight"), "must be 1..%d, got %d", MaxBackendWeight, b.Weight)
	}
	if b.Protocol == "udp" && b.TLS {
		ps.Addf(key(k, "tls"), "a udp backend cannot use TLS")
	}
	if b.Protocol == "quic" && b.TLSVerifyPeer != nil && !*b.TLSVerifyPeer {
		ps.Addf(key(k, "tls_verify_peer"), "a quic backend's certificate is always verified")
	}
	if !b.TLS && b.Protocol != "h3" && b.Protocol != "quic" && (b.TLSCAPath != "" || b.TLSVerifyHostname != "") {
		ps.Addf(key(k, "tls"), "tls_ca_path or tls_verify_hostname set but tls is off")
	}
}

func poolHashKey(s string) bool {
	switch s {
	case "source_ip", "path":
		return true
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok {
		return poolToken(name)
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok {
		return poolToken(name)
	}
	return false
}

// poolToken reports whether s is a non-empty RFC 9110 §5.6.2 token.
func poolToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// Prepare fills the pool's defaults and validates it on its own (the
// central Validate does the same for every pool of a config). It is what a
// caller building a pool outside a config file, such as a test, uses.
func (p *Pool) Prepare(k string) error {
	p.setDefaults()
	var ps Problems
	p.validate(k, &ps)
	return ps.Err()
}

// DNSName reports whether a backend address's host is a DNS name rather
// than an IP literal: such a backend stands for every address the name
// resolves to ([runtime.dns]). localhost is not one: DNS servers do not
// answer it (the hosts file does, when the backend is dialed).
func DNSName(addr string) (host, port string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return "", "", false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", "", false
	}
	return strings.TrimSuffix(host, "."), port, true
}
