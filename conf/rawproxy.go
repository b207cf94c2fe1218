package conf

import (
	"net"
	"slices"
	"strings"
)

// This file is QUIC Mode B: [listeners.quic.raw_proxy] makes a quic
// listener terminate QUIC with its certificate and re-originate every
// stream and datagram over a QUIC connection to a backend, whatever the
// application protocol (the client's ALPN is offered upstream). The Rust
// ExpressGateway's keys name one backend (backend_addr); ours also take
// the listener's backends or pool (protocol = "quic") so that Mode B is
// balanced, health-tracked and circuit-broken as any pool is.

// Limits and defaults of [listeners.quic.raw_proxy].
const (
	DefaultRawProxyDgramQueue  = 1024
	MaxRawProxyDgramQueue      = 65_536
	DefaultRawProxyRelayStream = 256
	MaxRawProxyRelayStreams    = 10_000
)

// modeBFront is the backend check's name for a raw_proxy listener.
const modeBFront = "quic raw_proxy"

// RawProxy is [listeners.quic.raw_proxy].
type RawProxy struct {
	// BackendAddr is the one QUIC server (host:port) connections are
	// relayed to (the Rust ExpressGateway's form); set it, or the
	// listener's backends or pool (protocol = "quic"), not both.
	BackendAddr string `koanf:"backend_addr"`
	// SNI is the server name sent to the backend and verified against its
	// certificate (an IP address is verified, not sent); empty: the
	// backend's tls_verify_hostname, else its address host.
	SNI string `koanf:"sni"`
	// BackendCAPath is the PEM bundle the backends' certificates are
	// verified against (a backend's own tls_ca_path wins); empty: the
	// system roots. Verification cannot be turned off.
	BackendCAPath string `koanf:"backend_ca_path"`
	// DgramQueueCap bounds the QUIC DATAGRAMs (RFC 9221) waiting to be
	// relayed, each direction of each connection; past it the newest is
	// dropped and counted (expressgateway_quicrelay_datagrams_dropped_total).
	DgramQueueCap int `koanf:"dgram_queue_cap"`
	// MaxRelayStreams bounds the streams one connection relays at once (all
	// kinds, both sides opening; long-lived ones count, such as HTTP/3's
	// six control and QPACK streams); it is also the MAX_STREAMS credit
	// each side is given for bidirectional and for unidirectional streams.
	// A stream past it waits, unread, under QUIC flow control.
	MaxRelayStreams int `koanf:"max_relay_streams"`
	// ALPN narrows the application protocols accepted from clients (and so
	// offered upstream); empty: whatever the client offers is accepted and
	// its first choice offered upstream.
	ALPN []string `koanf:"alpn"`
}

func (r *RawProxy) setDefaults() {
	def(&r.DgramQueueCap, DefaultRawProxyDgramQueue)
	def(&r.MaxRelayStreams, DefaultRawProxyRelayStream)
}

// ModeB reports whether the listener is a QUIC Mode B relay (a quic
// listener with [listeners.quic.raw_proxy]) rather than HTTP/3.
func (l *Listener) ModeB() bool {
	return l.Protocol == "quic" && l.QUIC != nil && l.QUIC.RawProxy != nil
}

// backendFront is the front the listener's backends are checked against.
func (l *Listener) backendFront() string {
	if l.ModeB() {
		return modeBFront
	}
	return l.Protocol
}

// validateRawProxy checks [listeners.quic.raw_proxy] and what a Mode B
// listener must not have.
func (l *Listener) validateRawProxy(k string, c *Config, ps *Problems) {
	if !l.ModeB() {
		l.refuseQUICPools(c, ps)
		return
	}
	r := l.QUIC.RawProxy
	rk := key(k, "quic", "raw_proxy")
	n := 0
	if r.BackendAddr != "" {
		n++
		if err := checkHostPort(r.BackendAddr); err != nil {
			ps.Addf(key(rk, "backend_addr"), "%v", err)
		} else if h, p, _ := net.SplitHostPort(r.BackendAddr); h == "" || p == "0" {
			ps.Addf(key(rk, "backend_addr"), "want a backend host:port with a host and a port, got %q", r.BackendAddr)
		}
	}
	if len(l.Backends) > 0 {
		n++
	}
	if l.Pool != "" {
		n++
		if pi := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Name == l.Pool }); pi >= 0 {
			p := &c.Pools[pi]
			for j := range p.Backends {
				checkBackendFor(key(idx(key(idx("pools", pi), "backends"), j)), modeBFront, &p.Backends[j], ps)
			}
			if hc := p.HealthCheck; hc != nil {
				l.checkModeBHealth(pi, p, r, ps)
			}
		}
	}
	switch {
	case n == 0:
		ps.Addf(key(rk, "backend_addr"), "a raw_proxy listener needs backend_addr, backends or a pool")
	case n > 1:
		ps.Addf(key(rk, "backend_addr"), "set one of backend_addr, the listener's backends or its pool")
	}
	if r.SNI != "" && !validSNI(r.SNI) {
		ps.Addf(key(rk, "sni"), "not a DNS name or an IP address: %q (a name has letters, digits, '-' and dots)", r.SNI)
	}
	if r.BackendCAPath != "" {
		if b, err := readSmallFile(r.BackendCAPath); err != nil {
			ps.Addf(key(rk, "backend_ca_path"), "cannot read CA bundle: %v", err)
		} else if err := parseCertChain(b); err != nil {
			ps.Addf(key(rk, "backend_ca_path"), "%s: %v", r.BackendCAPath, err)
		}
	}
	rangeInt(ps, key(rk, "dgram_queue_cap"), r.DgramQueueCap, 1, MaxRawProxyDgramQueue)
	rangeInt(ps, key(rk, "max_relay_streams"), r.MaxRelayStreams, 1, MaxRawProxyRelayStreams)
	seen := map[string]bool{}
	for i, a := range r.ALPN {
		switch {
		case a == "" || len(a) > 255:
			ps.Addf(idx(key(rk, "alpn"), i), "an ALPN protocol is 1 to 255 bytes, got %d", len(a))
		case seen[a]:
			ps.Addf(idx(key(rk, "alpn"), i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	if l.QUIC.EarlyDataPolicy == "reject" {
		ps.Addf(key(k, "quic", "early_data_policy"), "a raw_proxy listener cannot answer 425 inside a stream it does not read: its early data waits for the handshake (wait), so nothing a replay could repeat reaches a backend")
	}
	if len(l.Routes) > 0 {
		ps.Addf(key(k, "routes"), "routes are for HTTP listeners; a raw_proxy listener relays QUIC to its backends")
	}
	for _, t := range []struct {
		name string
		set  bool
	}{{"websocket", l.WS != nil}, {"grpc", l.GRPC != nil}, {"alt_svc", l.AltSvc != nil}} {
		if t.set {
			ps.Addf(key(k, t.name), "[listeners.%s] is for HTTP fronts; a raw_proxy listener relays QUIC unread", t.name)
		}
	}
}

// checkModeBHealth checks the active health check of a pool serving a
// Mode B listener: quic backends are probed with an HTTP request over
// HTTP/3 (so they must speak it), verified with each backend's own
// tls_ca_path and tls_verify_hostname, which the probe reads instead of
// the listener's backend_ca_path and sni.
func (l *Listener) checkModeBHealth(pi int, p *Pool, r *RawProxy, ps *Problems) {
	pk := idx("pools", pi)
	if p.HealthCheck.Type != "http" {
		ps.Addf(key(pk, "health_check", "type"), "pool %q serves raw_proxy listener %q: its quic backends are checked with type = \"http\" over HTTP/3, not %q (without active checks, failed connects feed outlier detection, [pools.outlier])", p.Name, l.Name, p.HealthCheck.Type)
	}
	for j, b := range p.Backends {
		bk := idx(key(pk, "backends"), j)
		if r.BackendCAPath != "" && b.TLSCAPath == "" {
			ps.Addf(key(bk, "tls_ca_path"), "pool %q is health-checked: its probe verifies %s with the backend's tls_ca_path, not raw_proxy backend_ca_path; set it", p.Name, b.Address)
		}
		if r.SNI != "" && b.TLSVerifyHostname == "" {
			ps.Addf(key(bk, "tls_verify_hostname"), "pool %q is health-checked: its probe verifies %s for the backend's tls_verify_hostname, not raw_proxy sni; set it", p.Name, b.Address)
		}
	}
}

// refuseQUICPools names the quic backends of the pools a listener other
// than Mode B uses: only a raw_proxy listener relays to them.
func (l *Listener) refuseQUICPools(c *Config, ps *Problems) {
	names := []string{l.Pool}
	for _, r := range l.Routes {
		names = append(names, r.Pool)
	}
	for pi := range c.Pools {
		p := &c.Pools[pi]
		if p.Name == "" || !slices.Contains(names, p.Name) {
			continue
		}
		for j, b := range p.Backends {
			if b.Protocol == "quic" {
				ps.Addf(key(idx(key(idx("pools", pi), "backends"), j), "protocol"), "pool %q serves %s listener %q: a quic backend is for a raw_proxy (Mode B) listener", p.Name, l.Protocol, l.Name)
			}
		}
	}
}

// validSNI reports whether s may name the backend: a DNS name (sent in
// SNI and verified), or an IP address (verified against the certificate's
// IP addresses; RFC 6066 §3 sends no SNI for it).
func validSNI(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
