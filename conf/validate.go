package conf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MinRetrySecretBytes is the shortest QUIC retry secret accepted (it keys
// Retry tokens; the listener creates 32 bytes).
const MinRetrySecretBytes = 16

// Validate checks the whole config and returns every problem found, or nil.
func (c *Config) Validate() error {
	ps := &Problems{file: c.File}
	c.validate(ps)
	return ps.Err()
}

var listenerProtocols = map[string]bool{"tcp": true, "tls": true, "udp": true, "h1": true, "h1s": true, "quic": true}

// IsL4 reports whether a listener protocol relays bytes or datagrams
// rather than HTTP.
func IsL4(protocol string) bool { return protocol == "tcp" || protocol == "tls" || protocol == "udp" }

func (c *Config) validate(ps *Problems) {
	if len(c.Listeners) == 0 && len(c.Passthrough.All()) == 0 {
		ps.Addf("listeners", "at least one [[listeners]] entry (or a [passthrough] listener) is required")
	}
	pools := map[string]bool{}
	for i := range c.Pools {
		p := &c.Pools[i]
		k := idx("pools", i)
		p.validate(k, ps)
		if pools[p.Name] {
			ps.Addf(key(k, "name"), "duplicate pool name %q", p.Name)
		}
		pools[p.Name] = true
	}
	type bound struct{ net, addr string }
	seen := map[bound]string{}
	names := map[string]string{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		k := idx("listeners", i)
		l.validate(k, c, pools, ps)
		network := "tcp"
		if l.Protocol == "udp" || l.Protocol == "quic" {
			network = "udp"
		}
		if network == "tcp" && l.Address == c.Observability.MetricsBind {
			ps.Addf(key(k, "address"), "address %s is also observability.metrics_bind (the admin listener)", l.Address)
		}
		b := bound{network, l.Address}
		if strings.HasSuffix(l.Address, ":0") {
			// Port 0 binds an ephemeral port: never a clash.
		} else if prev, ok := seen[b]; ok {
			ps.Addf(key(k, "address"), "address %s (%s) is already used by %s", l.Address, network, prev)
		} else {
			seen[b] = k
		}
		if prev, ok := names[l.Name]; ok && l.Name != "" {
			ps.Addf(key(k, "name"), "listener name %q is already used by %s; names must be unique (metrics, logs and reload tell listeners apart by name)", l.Name, prev)
		} else {
			names[l.Name] = k
		}
	}
	c.Runtime.validate(ps)
	c.validateL4(ps)
	c.validatePassthrough(ps)
	c.Observability.validate(c, ps)
	c.Admin.validate(ps)
	for i, cidr := range c.Security.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			if _, err2 := netip.ParseAddr(cidr); err2 != nil {
				ps.Addf(idx("security.trusted_proxies", i), "not a CIDR or address: %q", cidr)
			}
		}
	}
}

func (l *Listener) validate(k string, c *Config, pools map[string]bool, ps *Problems) {
	if l.Address == "" {
		ps.Addf(key(k, "address"), "required")
	} else if err := checkHostPort(l.Address); err != nil {
		ps.Addf(key(k, "address"), "%v", err)
	}
	switch {
	case l.Protocol == "":
		ps.Addf(key(k, "protocol"), "required (one of tcp, tls, udp, h1, h1s, quic)")
	case l.Protocol == "http" || l.Protocol == "h2" || l.Protocol == "h3":
		ps.Addf(key(k, "protocol"), "%q is not a listener protocol: use h1 (HTTP/1.1 + h2c), h1s (TLS, h2 + http/1.1) or quic (HTTP/3)", l.Protocol)
	case !listenerProtocols[l.Protocol]:
		ps.Addf(key(k, "protocol"), "unknown protocol %q (want one of tcp, tls, udp, h1, h1s, quic)", l.Protocol)
	}
	needsTLS := l.Protocol == "tls" || l.Protocol == "h1s"
	switch {
	case needsTLS && l.TLS == nil:
		ps.Addf(key(k, "tls"), "a %s listener needs [listeners.tls] with cert_path and key_path", l.Protocol)
	case !needsTLS && l.TLS != nil:
		ps.Addf(key(k, "tls"), "[listeners.tls] is only for tls and h1s listeners, not %q", l.Protocol)
	case l.TLS != nil:
		checkCertPair(key(k, "tls"), l.TLS.CertPath, l.TLS.KeyPath, ps)
		t := l.TLS
		rangeInt(ps, key(k, "tls", "ticket_rotation_interval_seconds"), t.TicketRotationIntervalSeconds, 1, maxTicketSeconds)
		rangeInt(ps, key(k, "tls", "ticket_rotation_overlap_seconds"), t.TicketRotationOverlapSeconds, 1, maxTicketSeconds)
		if t.TicketRotationIntervalSeconds > 0 && t.TicketRotationOverlapSeconds/t.TicketRotationIntervalSeconds >= MaxTicketKeys {
			ps.Addf(key(k, "tls", "ticket_rotation_overlap_seconds"), "%d s of overlap keeps more than %d keys of %d s each: raise ticket_rotation_interval_seconds or lower the overlap",
				t.TicketRotationOverlapSeconds, MaxTicketKeys, t.TicketRotationIntervalSeconds)
		}
		if t.TicketKeyPath != "" {
			if _, err := os.Stat(t.TicketKeyPath); err == nil {
				checkPrivateFile(key(k, "tls", "ticket_key_path"), t.TicketKeyPath, ps)
			}
		}
	}
	if l.Protocol == "quic" && l.QUIC == nil {
		ps.Addf(key(k, "quic"), "a quic listener needs [listeners.quic] with cert_path, key_path and retry_secret_path")
	} else if l.Protocol != "quic" && l.QUIC != nil {
		ps.Addf(key(k, "quic"), "[listeners.quic] is only for quic listeners")
	} else if q := l.QUIC; q != nil {
		checkCertPair(key(k, "quic"), q.CertPath, q.KeyPath, ps)
		if q.RetrySecretPath == "" {
			ps.Addf(key(k, "quic", "retry_secret_path"), "required")
		} else {
			checkRetrySecret(key(k, "quic", "retry_secret_path"), q.RetrySecretPath, ps)
		}
		if v := q.MaxRecvUDPPayloadSize; v < 1200 || v > MaxQUICRecvPayload {
			ps.Addf(key(k, "quic", "max_recv_udp_payload_size"), "%d is out of range [1200, %d]: QUIC needs 1200-byte datagrams (RFC 9000 §14) and the QUIC stack reads none larger than %d", v, MaxQUICRecvPayload, MaxQUICRecvPayload)
		}
		rangeInt(ps, key(k, "quic", "max_idle_timeout_ms"), q.MaxIdleTimeoutMs, 1, 600_000)
		if q.EarlyDataPolicy != "reject" && q.EarlyDataPolicy != "wait" {
			ps.Addf(key(k, "quic", "early_data_policy"), "want \"reject\" or \"wait\", not %q", q.EarlyDataPolicy)
		}
	}
	if a := l.AltSvc; a != nil {
		rangeInt(ps, key(k, "alt_svc", "h3_port"), a.H3Port, 1, 65535)
		rangeInt(ps, key(k, "alt_svc", "max_age"), a.MaxAge, 1, 1<<31-1)
	}
	validateExtendedConnect(l, key(k, "extended_connect_protocols"), ps)
	l.validateWS(k, ps)
	l.validateGRPC(k, ps)
	l.validateRawProxy(k, c, ps)
	if l.DrainTimeoutMs != nil {
		rangeInt(ps, key(k, "drain_timeout_ms"), *l.DrainTimeoutMs, 100, 300_000)
	}
	if l.DrainJitterMs != nil {
		drain := c.Runtime.DrainTimeoutMs
		if l.DrainTimeoutMs != nil {
			drain = *l.DrainTimeoutMs
		}
		rangeInt(ps, key(k, "drain_jitter_ms"), *l.DrainJitterMs, 0, drain)
	}
	h := l.HTTP
	hk := key(k, "http")
	for _, t := range []struct {
		name string
		v    int
	}{
		{"header_timeout_ms", h.HeaderTimeoutMs}, {"body_timeout_ms", h.BodyTimeoutMs},
		{"total_timeout_ms", h.TotalTimeoutMs}, {"head_timeout_ms", h.HeadTimeoutMs},
		{"idle_timeout_ms", h.IdleTimeoutMs}, {"write_timeout_ms", h.WriteTimeoutMs},
	} {
		rangeInt(ps, key(hk, t.name), t.v, 1, 86_400_000)
	}
	if h.MaxBodyBytes < 1 {
		ps.Addf(key(hk, "max_body_bytes"), "must be at least 1, got %d", h.MaxBodyBytes)
	}
	if h.MaxResponseBodyBytes < 0 {
		ps.Addf(key(hk, "max_response_body_bytes"), "must be 0 (no cap) or more, got %d", h.MaxResponseBodyBytes)
	}
	rangeInt(ps, key(hk, "max_header_bytes"), h.MaxHeaderBytes, 1024, 1<<20)
	rangeInt(ps, key(hk, "max_header_fields"), h.MaxHeaderFields, 8, 10_000)
	rangeInt(ps, key(hk, "max_uri_bytes"), h.MaxURIBytes, 256, 1<<20)
	s := l.H2
	sk := key(k, "h2_security")
	rangeInt(ps, key(sk, "max_concurrent_streams"), s.MaxConcurrentStreams, 1, 10_000)
	rangeInt(ps, key(sk, "max_header_list_size"), s.MaxHeaderListSize, 1024, 16<<20)
	rangeInt(ps, key(sk, "initial_stream_window_size"), s.InitialStreamWindowSize, 1, 1<<31-1)
	rangeInt(ps, key(sk, "initial_connection_window_size"), s.InitialConnectionWindowSize, 65535, 1<<31-1)
	rangeInt(ps, key(sk, "rapid_reset_threshold"), s.RapidResetThreshold, 1, 1_000_000)
	rangeInt(ps, key(sk, "max_local_error_reset_streams"), s.MaxLocalErrorResetStreams, 1, 1_000_000)
	rangeInt(ps, key(sk, "max_send_buf_size"), s.MaxSendBufSize, 16<<10, 64<<20)
	if s.KeepAliveIntervalMs != nil {
		rangeInt(ps, key(sk, "keep_alive_interval_ms"), *s.KeepAliveIntervalMs, 0, 86_400_000)
	}
	rangeInt(ps, key(sk, "keep_alive_timeout_ms"), s.KeepAliveTimeoutMs, 1, 86_400_000)

	// Backends, pool and routes.
	l7 := !IsL4(l.Protocol)
	if l.Pool != "" && len(l.Backends) > 0 {
		ps.Addf(key(k, "pool"), "set either pool or backends, not both")
	}
	if l.Pool != "" && !pools[l.Pool] {
		ps.Addf(key(k, "pool"), "no [[pools]] entry is named %q", l.Pool)
	}
	for j := range l.Backends {
		bk := idx(key(k, "backends"), j)
		l.Backends[j].validate(bk, ps)
		checkBackendFor(bk, l.backendFront(), &l.Backends[j], ps)
	}
	checkDuplicateBackends(key(k, "backends"), l.Backends, ps)
	if !l7 && len(l.Routes) > 0 {
		ps.Addf(key(k, "routes"), "routes are for HTTP listeners, not %q", l.Protocol)
	}
	if !l7 && l.Pool == "" && len(l.Backends) == 0 {
		ps.Addf(key(k, "backends"), "a %s listener needs backends or a pool", l.Protocol)
	}
	if l7 && !l.ModeB() && l.Pool == "" && len(l.Backends) == 0 && len(l.Routes) == 0 {
		ps.Addf(key(k, "backends"), "an HTTP listener needs backends, a pool or routes")
	}
	for j := range l.Routes {
		r := &l.Routes[j]
		rk := idx(key(k, "routes"), j)
		n := 0
		if len(r.Backends) > 0 {
			n++
		}
		if r.Pool != "" {
			n++
			if !pools[r.Pool] {
				ps.Addf(key(rk, "pool"), "no [[pools]] entry is named %q", r.Pool)
			}
		}
		if r.DirectResponse != nil {
			n++
			rangeInt(ps, key(rk, "direct_response", "status"), r.DirectResponse.Status, 200, 599)
		}
		if n != 1 {
			ps.Addf(rk, "a route needs exactly one of backends, pool or direct_response")
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			ps.Addf(key(rk, "path_prefix"), "must start with /, got %q", r.PathPrefix)
		}
		if strings.ContainsAny(r.Host, " /:,") {
			ps.Addf(key(rk, "host"), "not a host name: %q", r.Host)
		}
		for b := range r.Backends {
			bk := idx(key(rk, "backends"), b)
			r.Backends[b].validate(bk, ps)
			checkBackendFor(bk, l.backendFront(), &r.Backends[b], ps)
		}
		checkDuplicateBackends(key(rk, "backends"), r.Backends, ps)
	}
}

// httpFrontProtocols are the listeners that may carry
// [listeners.websocket] and [listeners.grpc]: the HTTP ones (h1 also
// serves h2c).
var httpFrontProtocols = []string{"h1", "h1s", "quic"}

func (l *Listener) validateWS(k string, ps *Problems) {
	w := l.WS
	if w == nil {
		return
	}
	k = key(k, "websocket")
	if !slices.Contains(httpFrontProtocols, l.Protocol) {
		ps.Addf(k, "[listeners.websocket] is for h1, h1s and quic listeners, not %q", l.Protocol)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"idle_timeout_seconds", w.IdleTimeoutSeconds},
		{"max_message_size_bytes", w.MaxMessageSizeBytes},
		{"ping_rate_limit_per_window", w.PingRateLimitPerWindow},
		{"ping_rate_limit_window_seconds", w.PingRateLimitWindowSeconds},
		{"read_frame_timeout_seconds", w.ReadFrameTimeoutSeconds},
		{"max_tunnels", w.MaxTunnels},
		{"max_tunnels_per_ip", w.MaxTunnelsPerIP},
	} {
		positive(ps, key(k, f.name), f.v)
	}
}

func (l *Listener) validateGRPC(k string, ps *Problems) {
	g := l.GRPC
	if g == nil {
		return
	}
	k = key(k, "grpc")
	if !slices.Contains(httpFrontProtocols, l.Protocol) {
		ps.Addf(k, "[listeners.grpc] is for h1, h1s and quic listeners, not %q", l.Protocol)
	}
	positive(ps, key(k, "max_deadline_seconds"), g.MaxDeadlineSeconds)
	if g.MaxMessageBytes < 0 {
		ps.Addf(key(k, "max_message_bytes"), "must be ≥ 0 (0: no cap), not %d", g.MaxMessageBytes)
	}
	if g.MaxMessageBytes > 1<<32-1 {
		ps.Addf(key(k, "max_message_bytes"), "a gRPC message length is 32 bits: at most 4294967295, not %d", g.MaxMessageBytes)
	}
}

// checkBackendFor checks that a backend's protocol fits its listener.
func checkBackendFor(k, listener string, b *Backend, ps *Problems) {
	switch listener {
	case "tcp", "tls":
		if b.Protocol != "tcp" {
			ps.Addf(key(k, "protocol"), "a %s listener relays bytes: backend protocol must be tcp, not %q", listener, b.Protocol)
		}
	case "udp":
		if b.Protocol != "udp" && b.Protocol != "tcp" {
			ps.Addf(key(k, "protocol"), "a udp listener relays datagrams: backend protocol must be udp, not %q", b.Protocol)
		}
	case modeBFront:
		if b.Protocol != "quic" {
			ps.Addf(key(k, "protocol"), "a raw_proxy (Mode B) listener relays QUIC: backend protocol must be quic, not %q", b.Protocol)
		}
	default:
		if b.Protocol == "udp" {
			ps.Addf(key(k, "protocol"), "an HTTP listener cannot use a udp backend")
		}
		if b.Protocol == "quic" {
			ps.Addf(key(k, "protocol"), "a quic backend is for a raw_proxy (Mode B) listener; an HTTP listener's QUIC backend is h3")
		}
	}
}

// checkCertPair loads a certificate chain and its key the way the
// listener will, as the user running this, so that a missing, unreadable,
// garbage or mismatched pair fails the check instead of the boot.
func checkCertPair(k, certPath, keyPath string, ps *Problems) {
	var certPEM []byte
	if certPath == "" {
		ps.Addf(key(k, "cert_path"), "required")
	} else if b, err := readSmallFile(certPath); err != nil {
		ps.Addf(key(k, "cert_path"), "cannot read certificate: %v", err)
	} else if err := parseCertChain(b); err != nil {
		ps.Addf(key(k, "cert_path"), "%s: %v", certPath, err)
	} else {
		certPEM = b
	}
	if keyPath == "" {
		ps.Addf(key(k, "key_path"), "required")
		return
	}
	if !checkPrivateFile(key(k, "key_path"), keyPath, ps) {
		return
	}
	keyPEM, err := readSmallFile(keyPath)
	if err != nil {
		ps.Addf(key(k, "key_path"), "cannot read key: %v", err)
		return
	}
	if err := parseKey(keyPEM); err != nil {
		ps.Addf(key(k, "key_path"), "%s: %v", keyPath, err)
		return
	}
	if certPEM == nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		ps.Addf(key(k, "key_path"), "%s does not go with %s: %v", keyPath, certPath, err)
	}
}

// maxPEMFile bounds a certificate, key or secret file read by the check: a
// path at /dev/zero or a pipe must fail, not hang or fill memory.
const maxPEMFile = 4 << 20

// readSmallFile reads a regular file of at most maxPEMFile bytes.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > maxPEMFile {
		return nil, fmt.Errorf("%s is %d bytes; more than %d is not a certificate, key or secret", path, st.Size(), maxPEMFile)
	}
	return io.ReadAll(io.LimitReader(f, maxPEMFile+1))
}

// parseCertChain checks that b holds at least one PEM certificate and that
// each parses.
func parseCertChain(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate in the file")
	}
	return nil
}

// parseKey checks that b holds a PEM private key (PKCS #8, SEC 1 EC or
// PKCS #1 RSA, as crypto/tls reads them).
func parseKey(b []byte) error {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return errors.New("no PEM private key in the file")
		}
		if blk.Type != "PRIVATE KEY" && !strings.HasSuffix(blk.Type, " PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("the %s block does not parse as a private key", blk.Type)
	}
}

// checkPrivateFile applies CheckPrivateFile under key k. It reports
// whether the file is usable.
func checkPrivateFile(k, path string, ps *Problems) bool {
	if err := CheckPrivateFile(path); err != nil {
		ps.Addf(k, "%v", err)
		return false
	}
	return true
}

// CheckPrivateFile is the rule for a private key or secret file (TLS key,
// ticket key, retry secret, QUIC-LB key), at boot and on every re-read
// (SIGUSR1): it must exist and its mode pass CheckKeyMode. It follows
// symlinks, as the read does: a Kubernetes Secret volume's files are
// links into the kubelet's current copy.
func CheckPrivateFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot read key: %w", err)
	}
	return CheckKeyMode(path, st.Mode())
}

// keyModeRefused are the bits a private file must not have: any for other
// users, and write for its group. Group read stays allowed, as nginx and
// HAProxy on Debian use it (root:ssl-cert 0640) and as Kubernetes mounts a
// Secret for a pod's fsGroup (root:fsGroup 0440); the group is then the
// one that decides who reads the key.
const keyModeRefused fs.FileMode = 0o027

// CheckKeyMode is the permission rule itself: 0600 and 0400 pass, and so
// do 0640 and 0440 (readable by the file's group); a file other users can
// read, write or execute, or its group can write, is refused with the
// bits at fault and the chmod that fixes it.
func CheckKeyMode(path string, mode fs.FileMode) error {
	m := mode.Perm()
	if m&keyModeRefused == 0 {
		return nil
	}
	var wrong []string
	if o := m & 0o007; o != 0 {
		wrong = append(wrong, "other users can "+modeVerbs(o)+" it")
	}
	if m&0o020 != 0 {
		wrong = append(wrong, "its group can write it")
	}
	fix := m &^ keyModeRefused
	msg := fmt.Sprintf("%s has mode %04o: %s; a private key or secret may be read by its owner and its group, and written by its owner only: chmod %04o %s",
		path, m, strings.Join(wrong, " and "), fix, path)
	if fix&0o040 != 0 {
		msg += fmt.Sprintf(" (or %04o if its group need not read it)", fix&^0o070)
	}
	return errors.New(msg)
}

// modeVerbs names the permissions of one rwx triplet (its low three bits).
func modeVerbs(b fs.FileMode) string {
	var v []string
	for _, p := range []struct {
		bit  fs.FileMode
		verb string
	}{{4, "read"}, {2, "write"}, {1, "execute"}} {
		if b&p.bit != 0 {
			v = append(v, p.verb)
		}
	}
	if len(v) == 3 {
		return "read, write and execute"
	}
	return strings.Join(v, " and ")
}

// checkRetrySecret checks a QUIC retry secret as the listener reads it: an
// existing one private and long enough, an absent one creatable (its
// directory writable by the user running this).
func checkRetrySecret(k, path string, ps *Problems) {
	b, err := readSmallFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if err := unix.Access(dir, unix.W_OK); err != nil {
			ps.Addf(k, "%s does not exist and cannot be created in %s: %v", path, dir, err)
		}
	case err != nil:
		ps.Addf(k, "cannot read retry secret: %v", err)
	case !checkPrivateFile(k, path, ps):
	case len(b) < MinRetrySecretBytes:
		ps.Addf(k, "%s: want at least %d bytes, got %d", path, MinRetrySecretBytes, len(b))
	}
}

func (r *Runtime) validate(ps *Problems) {
	k := "runtime"
	if r.XDPEnabled && r.XDPInterface == "" {
		ps.Addf(key(k, "xdp_interface"), "required when xdp_enabled = true")
	}
	switch r.XDPMode {
	case "auto", "native", "generic", "skb":
	case "hw":
		// Offload runs the program on the NIC, which supports neither the
		// map types nor the helpers the fast path uses: attaching it
		// would fail, and running native instead would not be what was
		// asked for.
		ps.Addf(key(k, "xdp_mode"), `"hw" (NIC offload) is not supported: the XDP program uses maps and helpers that offload cannot run; use "native" (driver mode, the fastest supported) or "auto"`)
	default:
		ps.Addf(key(k, "xdp_mode"), "unknown mode %q (want auto, native, generic or skb)", r.XDPMode)
	}
	if r.XDPNewFlowCapPerSecPerCPU != 0 {
		rangeInt(ps, key(k, "xdp_new_flow_cap_per_sec_per_cpu"), r.XDPNewFlowCapPerSecPerCPU, 1000, 10_000_000)
	}
	rangeInt(ps, key(k, "drain_timeout_ms"), r.DrainTimeoutMs, 100, 300_000)
	rangeInt(ps, key(k, "readiness_settle_ms"), r.ReadinessSettleMs, 0, 30_000)
	if r.DrainJitterMs != nil {
		rangeInt(ps, key(k, "drain_jitter_ms"), *r.DrainJitterMs, 0, r.DrainTimeoutMs)
	}
	rangeInt(ps, key(k, "handshake_timeout_ms"), r.HandshakeTimeoutMs, 100, 60_000)
	rangeInt(ps, key(k, "connect_timeout_ms"), r.ConnectTimeoutMs, 100, 60_000)
	rangeInt(ps, key(k, "max_inflight_connections"), r.MaxInflightConnections, 100, 2_000_000)
	rangeInt(ps, key(k, "per_ip_connection_cap"), r.PerIPConnectionCap, 1, 2_000_000)
	switch r.HeaderUnderscorePolicy {
	case "reject", "drop", "allow":
	default:
		ps.Addf(key(k, "header_underscore_policy"), "want reject, drop or allow, not %q", r.HeaderUnderscorePolicy)
	}
	rangeInt(ps, key(k, "max_keepalive_requests"), r.MaxKeepaliveRequests, 0, 10_000_000)
	rangeInt(ps, key(k, "max_requests_per_h3_connection"), r.MaxRequestsPerH3Connection, 0, 10_000_000)
	rangeInt(ps, key(k, "watchdog", "header_deadline_ms"), r.Watchdog.HeaderDeadlineMs, 100, 60_000)
	rangeInt(ps, key(k, "watchdog", "body_progress_min_bps"), r.Watchdog.BodyProgressMinBps, 0, 10_000_000)
	rangeInt(ps, key(k, "watchdog", "sweep_interval_ms"), r.Watchdog.SweepIntervalMs, 100, 60_000)
	for i, sv := range r.DNS.Servers {
		if err := checkHostPort(sv); err != nil {
			ps.Addf(fmt.Sprintf("%s.dns.servers[%d]", k, i), "want host:port: %v", err)
		} else if h, _, _ := net.SplitHostPort(sv); h == "" {
			ps.Addf(fmt.Sprintf("%s.dns.servers[%d]", k, i), "want host:port with a host, got %q", sv)
		}
	}
	rangeInt(ps, key(k, "dns", "timeout_ms"), r.DNS.TimeoutMs, 10, 60_000)
	rangeInt(ps, key(k, "dns", "min_ttl_ms"), r.DNS.MinTTLMs, 100, 3_600_000)
	rangeInt(ps, key(k, "dns", "max_ttl_ms"), r.DNS.MaxTTLMs, 100, 86_400_000)
	if r.DNS.MaxTTLMs < r.DNS.MinTTLMs {
		ps.Addf(key(k, "dns", "max_ttl_ms"), "must be at least min_ttl_ms (%d), got %d", r.DNS.MinTTLMs, r.DNS.MaxTTLMs)
	}
	rangeInt(ps, key(k, "upstream_idle_timeout_ms"), r.UpstreamIdleTimeoutMs, 1, 3_600_000)
	rangeInt(ps, key(k, "upstream_max_age_ms"), r.UpstreamMaxAgeMs, 1, 86_400_000)
	rangeInt(ps, key(k, "upstream_max_idle_per_backend"), r.UpstreamMaxIdlePerBackend, 0, 100_000)
}

func (o *Observability) validate(c *Config, ps *Problems) {
	switch o.AccessLogFormat {
	case "json", "combined", "common":
	default:
		ps.Addf("observability.access_log_format", "want json, combined or common, not %q", o.AccessLogFormat)
	}
	if p := o.AccessLogPath; p != "" && (!filepath.IsAbs(p) || strings.HasSuffix(p, "/")) {
		ps.Addf("observability.access_log_path", "want an absolute file path, not %q", p)
	}
	o.Tracing.validate(ps)
	if o.MetricsBind == "" {
		return
	}
	k := "observability.metrics_bind"
	host, _, err := net.SplitHostPort(o.MetricsBind)
	if err != nil {
		ps.Addf(k, "%v", err)
		return
	}
	if err := checkHostPort(o.MetricsBind); err != nil {
		ps.Addf(k, "%v", err)
		return
	}
	ip, err := netip.ParseAddr(host)
	loopback := host == "localhost" || (err == nil && ip.IsLoopback())
	if !loopback && !c.Admin.AllowNonLoopback {
		ps.Addf(k, "%s is not a loopback address: set [admin].allow_non_loopback = true and api_token_hash to expose it", o.MetricsBind)
	}
}

func (t *Tracing) validate(ps *Problems) {
	const k = "observability.tracing"
	if e := t.OTLPEndpoint; e != "" {
		u, err := url.Parse(e)
		switch {
		case err != nil:
			ps.Addf(k+".otlp_endpoint", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			ps.Addf(k+".otlp_endpoint", "want an http:// or https:// URL, not %q", e)
		case u.Host == "" || u.Hostname() == "":
			ps.Addf(k+".otlp_endpoint", "%q names no host", e)
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
			// The exporter sends none of these: refuse rather than drop
			// them unseen.
			ps.Addf(k+".otlp_endpoint", "want scheme://host[:port][/path], without user info, query or fragment, not %q", e)
		}
	}
	// !(0 <= r <= 1) also refuses nan.
	if r := t.SampleRatio; !(r >= 0 && r <= 1) {
		ps.Addf(k+".sample_ratio", "want a number from 0 to 1, not %v", r)
	}
	if t.ServiceName == "" {
		ps.Addf(k+".service_name", "must not be empty")
	}
}

// OTLPTracesURL is the URL spans are posted to: otlp_endpoint, with the
// OTLP/HTTP traces path when it has none.
func (t *Tracing) OTLPTracesURL() string {
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || u.Path != "" {
		return t.OTLPEndpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

func (a *Admin) validate(ps *Problems) {
	if a.APITokenHash != "" {
		if b, err := hex.DecodeString(a.APITokenHash); err != nil || len(b) != 32 {
			ps.Addf("admin.api_token_hash", "must be the 64 hex digits of a SHA-256 digest")
		}
	}
	if a.AllowNonLoopback && a.APITokenHash == "" {
		ps.Addf("admin.allow_non_loopback", "requires admin.api_token_hash")
	}
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port: %q", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}

// Ticket rotation bounds: a key lives at most 30 days, and one listener
// holds at most MaxTicketKeys (the current one and those in the overlap).
const (
	maxTicketSeconds = 30 * 86_400
	MaxTicketKeys    = 64
)

// MaxQUICRecvPayload is the largest UDP payload the QUIC stack reads (its
// packet buffer), so the highest receive cap that means anything.
const MaxQUICRecvPayload = 1452

func rangeInt(ps *Problems, k string, v, lo, hi int) {
	if v < lo || v > hi {
		ps.Addf(k, "%d is out of range [%d, %d]", v, lo, hi)
	}
}

// positive checks a count or duration that 0 would not turn off but break.
func positive(ps *Problems, k string, v int) {
	if v < 1 {
		ps.Addf(k, "must be greater than 0, got %d", v)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
