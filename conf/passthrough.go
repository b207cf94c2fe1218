package conf

import (
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/expressgateway/expressgateway/quiclb"
)

// This file is QUIC passthrough (Mode A): [passthrough], the Rust
// ExpressGateway's block, is one listener, and [[passthrough.listeners]]
// adds more with the same keys. A passthrough listener forwards QUIC
// packets to backends unread (never decrypted), routed by Destination
// Connection ID: QUIC-LB Connection IDs ([[passthrough.quic_lb]]) go to
// their server statelessly, others by a learned-CID table or a consistent
// hash of the client's address and port.

// Limits and defaults of [passthrough].
const (
	DefaultPassthroughMaxConns     = 100_000
	MaxPassthroughConns            = 2_000_000
	DefaultPassthroughMinDCIDLen   = 8
	DefaultPassthroughBacklog      = 32
	MaxPassthroughBacklog          = 8192
	DefaultPassthroughAuditWindowS = 60
	DefaultPassthroughFlowIdleMs   = 60_000
	// DefaultPassthroughInitialRate and DefaultPassthroughInitialBurst are
	// the per-IP bucket of flow-starting packets: far above one client's
	// handshakes, far below a flood.
	DefaultPassthroughInitialRate  = 100
	DefaultPassthroughInitialBurst = 200
	MaxPassthroughInitialRate      = 1_000_000
	// DefaultPassthroughAlgorithm is the algorithm of a passthrough
	// listener's bare backends list: a consistent hash, the same on every
	// instance, so instances behind ECMP agree on unroutable flows.
	DefaultPassthroughAlgorithm = "maglev"
)

// Passthrough is [passthrough]. Its own keys describe one listener (the
// Rust ExpressGateway's form, which may be the only datapath); listeners
// adds more.
type Passthrough struct {
	PassthroughListener `koanf:",squash"`
	// Listeners are further passthrough listeners, each with the keys of
	// [passthrough] itself.
	Listeners []PassthroughListener `koanf:"listeners"`
}

// PassthroughListener is one QUIC passthrough listener.
type PassthroughListener struct {
	// Name labels the listener in metrics and logs; defaults to
	// "passthrough/" + bind_addr.
	Name string `koanf:"name"`
	// BindAddr is the UDP host:port clients send QUIC to. Required.
	BindAddr string `koanf:"bind_addr"`
	// Backends are the QUIC servers' host:port, balanced by maglev over the
	// client's address and port when a packet's Connection ID does not say
	// where it goes. Set either backends or pool.
	Backends []string `koanf:"backends"`
	// Pool names a [[pools]] entry (backends with protocol = "udp") whose
	// algorithm, weights and health serve the listener; maglev or ring_hash
	// keep the fallback consistent across instances.
	Pool string `koanf:"pool"`
	// RetrySecretPath is the pool's shared Retry token key (32 bytes raw, or
	// 64 hex digits), under the mode rule of [listeners.tls] key_path (0600,
	// 0400, 0640 or 0440). Required with mint_retry = true, and then it must
	// exist: every backend sets the same 32 bytes as its quic-go
	// Transport's TokenGeneratorKey (quiclb.ReadTokenKey), or rejects the
	// load balancer's tokens. Without mint_retry it is only checked, as
	// [listeners.quic] retry_secret_path is, so the Rust ExpressGateway's
	// configs boot.
	RetrySecretPath string `koanf:"retry_secret_path"`
	// MaxQUICConnections bounds the flows (client address and port, each
	// with its upstream socket); a new flow past it evicts the least
	// recently active one.
	MaxQUICConnections int `koanf:"max_quic_connections"`
	// MaxConnectionsPerIP bounds the flows of one client IP address; a new
	// flow past it is dropped and counted (0 = no per-IP cap).
	MaxConnectionsPerIP int `koanf:"max_connections_per_ip"`
	// MinClientDCIDLen: a long-header packet that would start a flow with
	// an unroutable Destination Connection ID shorter than this is dropped
	// (RFC 9000 §7.2: a client's first DCID is at least 8 bytes).
	MinClientDCIDLen int `koanf:"min_client_dcid_len"`
	// PerFlowBacklog bounds the datagrams queued toward one flow's backend;
	// past it the newest is dropped and counted.
	PerFlowBacklog int `koanf:"per_flow_backlog"`
	// StrictSourceBinding drops a short-header packet that arrives from a
	// new client address or port unless its Connection ID decodes under a
	// QUIC-LB config: a Connection ID known only from the learned table
	// does not move a connection (off-path injection guard).
	StrictSourceBinding bool `koanf:"strict_source_binding"`
	// AuditThrottleWindowSecs logs each kind of dropped packet at most once
	// per this window (the counters count every one).
	AuditThrottleWindowSecs int `koanf:"audit_throttle_window_secs"`
	// MaxDCIDLenRouted is the longest Destination Connection ID decoded or
	// learned; a longer one is routed by client address and port only.
	MaxDCIDLenRouted int `koanf:"max_dcid_len_routed"`
	// MintRetry makes the load balancer validate client addresses itself:
	// every tokenless Initial (at least 1200 bytes) is answered with a Retry
	// whose token is sealed in quic-go's format under retry_secret_path, and
	// an Initial with a Retry token is forwarded only if the token opens,
	// names the client's IP and the packet's DCID, and is at most 10 s old
	// (else it is dropped and counted); a NEW_TOKEN token goes to the
	// backend untouched (unless retry_new_tokens). The backends share the
	// key and do not Retry themselves. false (the default): the load balancer mints nothing and
	// the backends do Retry (quic-go VerifySourceAddress, one
	// TokenGeneratorKey across the pool), which needs no shared secret with
	// the load balancer.
	MintRetry *bool `koanf:"mint_retry"`
	// RetryBackendDualStack says the backends listen on a dual-stack socket
	// (a wildcard address opened with Go's "udp" network, as
	// quic.ListenAddr("0.0.0.0:443") does), so they see this gateway's
	// IPv4 address as IPv4-mapped IPv6: the Retry token must carry that
	// form, which quic-go compares byte for byte. Only with mint_retry and
	// backhaul = "per_flow" (on spp the backends see, and the token names,
	// the client's own address).
	RetryBackendDualStack bool `koanf:"retry_backend_dual_stack"`
	// RetryNewTokens makes mint_retry answer an Initial carrying a
	// NEW_TOKEN token (one a backend gave an earlier connection) with a
	// Retry too, instead of forwarding it: behind a passthrough a backend
	// binds such tokens to this gateway's address, not the client's, so
	// they prove nothing about the sender, and a backend that accepts one
	// lifts its anti-amplification limit. Costs returning clients one
	// round trip. Only with mint_retry.
	RetryNewTokens bool `koanf:"retry_new_tokens"`
	// InitialRatePerIP is the long-header packets per second that may
	// start a flow from one client IP (a token bucket; with mint_retry
	// every tokenless Initial counts, on a flow or not, and so does the one
	// with its token); past it they are dropped and counted
	// (reason="initial_rate"). 0 = no limit.
	InitialRatePerIP *int `koanf:"initial_rate_per_ip"`
	// InitialBurstPerIP is the token bucket's depth: how many such packets
	// one IP may send at once.
	InitialBurstPerIP int `koanf:"initial_burst_per_ip"`
	// FlowIdleTimeoutMs forgets a flow (and closes its upstream socket)
	// after this long without a datagram either way; learned Connection
	// IDs expire after it too. 0: flows leave only by eviction at
	// max_quic_connections.
	FlowIdleTimeoutMs *int `koanf:"flow_idle_timeout_ms"`
	// QUICLB are the QUIC-LB configs the backends mint Connection IDs
	// with, up to 7 side by side during rotation (each its config_id).
	QUICLB []QUICLB `koanf:"quic_lb"`
	// Backhaul is how datagrams reach the backends. "per_flow" (the
	// default): a connected upstream socket per client address and port,
	// with two goroutines; any QUIC server works unmodified and sees the
	// gateway's address. "spp": one shared socket, every datagram behind
	// a 38-byte Simple Proxy Protocol header naming the client, both
	// ways; a flow is a table entry (no socket, no goroutine, no
	// backlog: per_flow_backlog does not apply), and the backends see
	// each client's own address. The backends must read through
	// quiclb.SPPConn (or speak SPP); replies are taken only from the
	// pool's addresses and only for clients with a flow.
	Backhaul string `koanf:"backhaul"`
}

// QUICLB is one [[passthrough.quic_lb]] config
// (draft-ietf-quic-load-balancers-21).
type QUICLB struct {
	// ConfigID is the config rotation codepoint, 0..6: the top 3 bits of
	// every Connection ID minted under this config.
	ConfigID int `koanf:"config_id"`
	// ServerIDLen is the server ID's length in bytes (1..15).
	ServerIDLen int `koanf:"server_id_len"`
	// NonceLen is the nonce's length in bytes (4..18; with server_id_len at
	// most 19).
	NonceLen int `koanf:"nonce_len"`
	// Encoding is plaintext (needs no key; exposes the server ID),
	// single_pass (server_id_len + nonce_len = 16) or four_pass (any other
	// length). Default: single_pass or four_pass by length.
	Encoding string `koanf:"encoding"`
	// KeyPath is the 16-byte AES key (raw, or 32 hex digits), under the
	// mode rule of [listeners.tls] key_path (0600, 0400, 0640 or 0440).
	// Required unless encoding = "plaintext".
	KeyPath string `koanf:"key_path"`
	// Servers assign a server ID (hex, server_id_len bytes) to each backend
	// address; a decoded server ID routes to its backend.
	Servers []QUICLBServer `koanf:"servers"`
}

// QUICLBServer is one { address, server_id } of a QUIC-LB config.
type QUICLBServer struct {
	Address  string `koanf:"address"`   // A backend's host:port, as the listener's backends or pool list it.
	ServerID string `koanf:"server_id"` // The backend's server ID in hex.
}

// All returns every passthrough listener: [passthrough] itself when it
// has a bind_addr, then [[passthrough.listeners]].
func (p *Passthrough) All() []*PassthroughListener {
	var out []*PassthroughListener
	if p.BindAddr != "" || p.isSet() {
		out = append(out, &p.PassthroughListener)
	}
	for i := range p.Listeners {
		out = append(out, &p.Listeners[i])
	}
	return out
}

// isSet reports whether any top-level listener key is written, so that a
// [passthrough] with keys but no bind_addr is an error, not ignored.
func (p *Passthrough) isSet() bool {
	l := &p.PassthroughListener
	return l.Name != "" || len(l.Backends) > 0 || l.Pool != "" || l.RetrySecretPath != "" ||
		l.MaxQUICConnections != 0 || l.MinClientDCIDLen != 0 || l.PerFlowBacklog != 0 ||
		l.StrictSourceBinding || l.AuditThrottleWindowSecs != 0 || l.MaxDCIDLenRouted != 0 ||
		l.MintRetry != nil || l.FlowIdleTimeoutMs != nil || len(l.QUICLB) > 0 || l.MaxConnectionsPerIP != 0 ||
		l.Backhaul != "" ||
		l.RetryBackendDualStack || l.RetryNewTokens || l.InitialRatePerIP != nil || l.InitialBurstPerIP != 0
}

func (p *Passthrough) setDefaults() {
	for _, l := range p.All() {
		l.setDefaults()
	}
}

func (l *PassthroughListener) setDefaults() {
	if l.Name == "" {
		l.Name = "passthrough/" + l.BindAddr
	}
	def(&l.MaxQUICConnections, DefaultPassthroughMaxConns)
	def(&l.MinClientDCIDLen, DefaultPassthroughMinDCIDLen)
	def(&l.PerFlowBacklog, DefaultPassthroughBacklog)
	def(&l.AuditThrottleWindowSecs, DefaultPassthroughAuditWindowS)
	def(&l.MaxDCIDLenRouted, 20) // QUIC v1's longest Connection ID
	if l.Backhaul == "" {
		l.Backhaul = "per_flow"
	}
	defBool(&l.MintRetry, false)
	if l.FlowIdleTimeoutMs == nil {
		v := DefaultPassthroughFlowIdleMs
		l.FlowIdleTimeoutMs = &v
	}
	if l.InitialRatePerIP == nil {
		v := DefaultPassthroughInitialRate
		l.InitialRatePerIP = &v
	}
	def(&l.InitialBurstPerIP, DefaultPassthroughInitialBurst)
	for i := range l.QUICLB {
		q := &l.QUICLB[i]
		if q.Encoding == "" {
			switch {
			case q.KeyPath == "":
				// No key: validate says plaintext must be asked for.
			case q.ServerIDLen+q.NonceLen == 16:
				q.Encoding = "single_pass"
			default:
				q.Encoding = "four_pass"
			}
		}
	}
}

// validatePassthrough checks [passthrough] and its listeners.
func (c *Config) validatePassthrough(ps *Problems) {
	type at struct {
		l *PassthroughListener
		k string
	}
	var all []at
	if p := &c.Passthrough; p.BindAddr != "" || p.isSet() {
		all = append(all, at{&p.PassthroughListener, "passthrough"})
	}
	for i := range c.Passthrough.Listeners {
		all = append(all, at{&c.Passthrough.Listeners[i], idx("passthrough.listeners", i)})
	}
	names := map[string]string{}
	addrs := map[string]string{}
	for j := range c.Listeners {
		if ol := &c.Listeners[j]; ol.Protocol == "udp" || ol.Protocol == "quic" {
			addrs[ol.Address] = idx("listeners", j)
		}
	}
	for _, a := range all {
		a.l.validate(a.k, c, ps)
		if prev, dup := names[a.l.Name]; dup {
			ps.Addf(key(a.k, "name"), "passthrough listener name %q is already used by %s", a.l.Name, prev)
		}
		names[a.l.Name] = a.k
		if prev, dup := addrs[a.l.BindAddr]; dup && !strings.HasSuffix(a.l.BindAddr, ":0") {
			ps.Addf(key(a.k, "bind_addr"), "address %s (udp) is already used by %s", a.l.BindAddr, prev)
		}
		addrs[a.l.BindAddr] = a.k
	}
}

func (l *PassthroughListener) validate(k string, c *Config, ps *Problems) {
	if l.BindAddr == "" {
		ps.Addf(key(k, "bind_addr"), "required")
	} else if err := checkHostPort(l.BindAddr); err != nil {
		ps.Addf(key(k, "bind_addr"), "%v", err)
	}
	var addrs []string
	switch {
	case l.Pool != "" && len(l.Backends) > 0:
		ps.Addf(key(k, "pool"), "set either pool or backends, not both")
	case l.Pool != "":
		pi := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Name == l.Pool })
		if pi < 0 {
			ps.Addf(key(k, "pool"), "no [[pools]] entry is named %q", l.Pool)
			break
		}
		for j, b := range c.Pools[pi].Backends {
			if b.Protocol != "udp" {
				ps.Addf(key(idx(key(idx("pools", pi), "backends"), j), "protocol"), "pool %q serves passthrough listener %q: its backends are QUIC servers over UDP, so protocol = \"udp\", not %q", l.Pool, l.Name, b.Protocol)
			}
			addrs = append(addrs, b.Address)
		}
	case len(l.Backends) == 0:
		ps.Addf(key(k, "backends"), "a passthrough listener needs backends or a pool")
	default:
		dup := map[string]bool{}
		for j, a := range l.Backends {
			if err := checkHostPort(a); err != nil {
				ps.Addf(idx(key(k, "backends"), j), "%v", err)
			}
			if dup[a] {
				ps.Addf(idx(key(k, "backends"), j), "backend %s listed twice", a)
			}
			dup[a] = true
		}
		addrs = l.Backends
	}
	switch {
	case *l.MintRetry && l.RetrySecretPath == "":
		ps.Addf(key(k, "mint_retry"), "needs retry_secret_path: the 32-byte token key the backends also set as their quic-go TokenGeneratorKey")
	case *l.MintRetry:
		if _, err := ReadRetryTokenKey(l.RetrySecretPath); err != nil {
			ps.Addf(key(k, "retry_secret_path"), "%v", err)
		}
	case l.RetrySecretPath != "":
		checkRetrySecret(key(k, "retry_secret_path"), l.RetrySecretPath, ps)
	}
	if l.RetryBackendDualStack && !*l.MintRetry {
		ps.Addf(key(k, "retry_backend_dual_stack"), "only applies with mint_retry = true (it shapes the load balancer's Retry tokens)")
	}
	if l.RetryNewTokens && !*l.MintRetry {
		ps.Addf(key(k, "retry_new_tokens"), "only applies with mint_retry = true (without it the backends judge every token)")
	}
	rangeInt(ps, key(k, "initial_rate_per_ip"), *l.InitialRatePerIP, 0, MaxPassthroughInitialRate)
	rangeInt(ps, key(k, "initial_burst_per_ip"), l.InitialBurstPerIP, 1, MaxPassthroughInitialRate)
	rangeInt(ps, key(k, "max_quic_connections"), l.MaxQUICConnections, 1, MaxPassthroughConns)
	rangeInt(ps, key(k, "max_connections_per_ip"), l.MaxConnectionsPerIP, 0, MaxPassthroughConns)
	rangeInt(ps, key(k, "min_client_dcid_len"), l.MinClientDCIDLen, 8, 20)
	rangeInt(ps, key(k, "per_flow_backlog"), l.PerFlowBacklog, 1, MaxPassthroughBacklog)
	rangeInt(ps, key(k, "audit_throttle_window_secs"), l.AuditThrottleWindowSecs, 1, 86_400)
	rangeInt(ps, key(k, "max_dcid_len_routed"), l.MaxDCIDLenRouted, 1, 20)
	if l.Backhaul != "per_flow" && l.Backhaul != "spp" {
		ps.Addf(key(k, "backhaul"), "%q: per_flow (an upstream socket per client) or spp (one shared socket, SPP headers; backends read through quiclb.SPPConn)", l.Backhaul)
	}
	if l.FlowIdleTimeoutMs != nil {
		rangeInt(ps, key(k, "flow_idle_timeout_ms"), *l.FlowIdleTimeoutMs, 0, 86_400_000)
	}
	if len(l.QUICLB) > quiclb.MaxConfigs {
		ps.Addf(key(k, "quic_lb"), "%d configs, at most %d (config ids 0..6)", len(l.QUICLB), quiclb.MaxConfigs)
	}
	ids := map[int]int{}
	known := map[string]bool{}
	for _, a := range addrs {
		known[a] = true
	}
	for i := range l.QUICLB {
		q := &l.QUICLB[i]
		qk := idx(key(k, "quic_lb"), i)
		if prev, dup := ids[q.ConfigID]; dup {
			ps.Addf(key(qk, "config_id"), "config_id %d is also quic_lb[%d]'s", q.ConfigID, prev)
		}
		ids[q.ConfigID] = i
		rangeInt(ps, key(qk, "config_id"), q.ConfigID, 0, quiclb.MaxConfigs-1)
		if q.ConfigID < 0 || q.ConfigID >= quiclb.MaxConfigs {
			// named above
		} else if err := q.shape().Check(); err != nil {
			ps.Addf(qk, "%s", strings.TrimPrefix(err.Error(), "quiclb: "))
		}
		if q.Encoding != "plaintext" && q.Encoding != "" || q.KeyPath != "" {
			if q.KeyPath == "" {
				ps.Addf(key(qk, "key_path"), "required for encoding %q", q.Encoding)
			} else if q.Encoding == "plaintext" {
				ps.Addf(key(qk, "key_path"), "a plaintext config takes no key")
			} else if checkPrivateFile(key(qk, "key_path"), q.KeyPath, ps) {
				if _, err := readQUICLBKey(q.KeyPath); err != nil {
					ps.Addf(key(qk, "key_path"), "%v", err)
				}
			}
		} else if q.Encoding == "" {
			ps.Addf(key(qk, "encoding"), "no key_path: set encoding = \"plaintext\" to route on unencrypted server IDs (anyone can read them), or give a key")
		}
		sids := map[string]int{}
		for j, s := range q.Servers {
			sk := idx(key(qk, "servers"), j)
			if !known[s.Address] {
				ps.Addf(key(sk, "address"), "%q is not a backend of this listener", s.Address)
			}
			b, err := hex.DecodeString(s.ServerID)
			switch {
			case err != nil:
				ps.Addf(key(sk, "server_id"), "not hex: %q", s.ServerID)
			case len(b) != q.ServerIDLen:
				ps.Addf(key(sk, "server_id"), "%d bytes, server_id_len is %d", len(b), q.ServerIDLen)
			}
			if prev, dup := sids[strings.ToLower(s.ServerID)]; dup {
				ps.Addf(key(sk, "server_id"), "server id %s is also servers[%d]'s", s.ServerID, prev)
			}
			sids[strings.ToLower(s.ServerID)] = j
		}
	}
}

// shape is q as a quiclb.Config with a stand-in key: its lengths and
// encoding, checkable without reading key_path.
func (q *QUICLB) shape() quiclb.Config {
	enc, err := quiclb.ParseEncoding(q.Encoding)
	if err != nil && q.Encoding != "" {
		enc = quiclb.Encoding(255) // Check names it
	}
	id := uint8(quiclb.MaxConfigs) // out of range: Check names it
	if q.ConfigID >= 0 && q.ConfigID < quiclb.MaxConfigs {
		id = uint8(q.ConfigID)
	}
	c := quiclb.Config{ID: id, ServerIDLen: q.ServerIDLen, NonceLen: q.NonceLen, Encoding: enc}
	if enc != quiclb.Plaintext {
		c.Key = make([]byte, quiclb.KeyLen)
	}
	return c
}

// Config is q as a quiclb.Config, its key read from key_path.
func (q *QUICLB) Config() (quiclb.Config, error) {
	c := q.shape()
	if c.Encoding != quiclb.Plaintext {
		k, err := readQUICLBKey(q.KeyPath)
		if err != nil {
			return quiclb.Config{}, err
		}
		c.Key = k
	}
	return c, c.Check()
}

// readQUICLBKey reads a QUIC-LB key file: 16 raw bytes, or 32 hex digits
// (a trailing newline allowed).
func readQUICLBKey(path string) ([]byte, error) {
	if err := CheckPrivateFile(path); err != nil {
		return nil, err
	}
	b, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == quiclb.KeyLen {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == quiclb.KeyLen {
		return k, nil
	}
	return nil, errors.New(path + ": want a 16-byte key (raw, or 32 hex digits), got " + strconv.Itoa(len(b)) + " bytes")
}

// ReadRetryTokenKey reads a passthrough's retry_secret_path: a private
// file (CheckPrivateFile) of 32 raw bytes or 64 hex digits.
func ReadRetryTokenKey(path string) (quiclb.TokenKey, error) {
	if err := CheckPrivateFile(path); err != nil {
		return quiclb.TokenKey{}, err
	}
	b, err := readSmallFile(path)
	if err != nil {
		return quiclb.TokenKey{}, err
	}
	k, err := quiclb.ParseTokenKey(b)
	if err != nil {
		return k, errors.New(path + ": " + strings.TrimPrefix(err.Error(), "quiclb: "))
	}
	return k, nil
}

// ServerIDs maps each backend address of q to its server ID.
func (q *QUICLB) ServerIDs() (map[string]quiclb.ServerID, error) {
	out := make(map[string]quiclb.ServerID, len(q.Servers))
	for _, s := range q.Servers {
		id, err := quiclb.ParseServerID(s.ServerID)
		if err != nil {
			return nil, err
		}
		out[s.Address] = id
	}
	return out, nil
}
