package conf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestPassthrough_RustBlockBootsUnchanged: the Rust ExpressGateway's
// [passthrough] block, every key written, is a whole config (no
// [[listeners]]) and keeps its values. Its mint_retry = true needs the
// token key to exist (the backends share it), here 64 hex digits.
func TestPassthrough_RustBlockBootsUnchanged(t *testing.T) {
	secret := write(t, "retry.key", strings.Repeat("ab", 32)+"\n", 0o600)
	body := `
[passthrough]
bind_addr = "0.0.0.0:4433"
backends = ["10.0.0.1:4433", "10.0.0.2:4433"]
retry_secret_path = "` + secret + `"
max_quic_connections = 5000
min_client_dcid_len = 10
per_flow_backlog = 16
strict_source_binding = true
audit_throttle_window_secs = 30
max_dcid_len_routed = 18
mint_retry = true
flow_idle_timeout_ms = 0
retry_backend_dual_stack = true
retry_new_tokens = true
initial_rate_per_ip = 0
initial_burst_per_ip = 7
`
	cfg, err := load(write(t, "p.toml", body, 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	all := cfg.Passthrough.All()
	if len(all) != 1 {
		t.Fatalf("%d passthrough listeners", len(all))
	}
	p := all[0]
	if p.Name != "passthrough/0.0.0.0:4433" || len(p.Backends) != 2 || p.MaxQUICConnections != 5000 ||
		p.MinClientDCIDLen != 10 || p.PerFlowBacklog != 16 || !p.StrictSourceBinding ||
		p.AuditThrottleWindowSecs != 30 || p.MaxDCIDLenRouted != 18 || !*p.MintRetry || *p.FlowIdleTimeoutMs != 0 ||
		!p.RetryBackendDualStack || !p.RetryNewTokens || *p.InitialRatePerIP != 0 || p.InitialBurstPerIP != 7 ||
		p.Backhaul != "per_flow" {
		t.Fatalf("values: %+v", p)
	}
	k, err := ReadRetryTokenKey(p.RetrySecretPath)
	if err != nil || k[0] != 0xab || k[31] != 0xab {
		t.Fatalf("token key %x: %v", k, err)
	}
}

// TestPassthrough_OursLoads: a named pool, several listeners and QUIC-LB
// configs of each encoding load with their defaults.
func TestPassthrough_OursLoads(t *testing.T) {
	key := write(t, "lb.key", "8f95f09245765f80256934e50c66207f\n", 0o600)
	body := `
[[pools]]
name = "quic"
algorithm = "maglev"
backends = [{ address = "10.0.0.1:4433", protocol = "udp", weight = 3 }, { address = "10.0.0.2:4433", protocol = "udp" }]

[passthrough]
bind_addr = "127.0.0.1:4433"
pool = "quic"
backhaul = "spp"

[[passthrough.quic_lb]]
config_id = 0
server_id_len = 2
nonce_len = 14
key_path = "` + key + `"
servers = [{ address = "10.0.0.1:4433", server_id = "0001" }, { address = "10.0.0.2:4433", server_id = "0002" }]

[[passthrough.quic_lb]]
config_id = 1
server_id_len = 3
nonce_len = 5
key_path = "` + key + `"
servers = [{ address = "10.0.0.1:4433", server_id = "aabbcc" }]

[[passthrough.quic_lb]]
config_id = 2
server_id_len = 1
nonce_len = 6
encoding = "plaintext"

[[passthrough.listeners]]
name = "edge-b"
bind_addr = "127.0.0.1:4434"
backends = ["10.0.0.3:4433"]
`
	cfg, err := load(write(t, "p.toml", body, 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	all := cfg.Passthrough.All()
	if len(all) != 2 || all[1].Name != "edge-b" || all[1].MaxQUICConnections != DefaultPassthroughMaxConns {
		t.Fatalf("listeners: %+v", all)
	}
	q := all[0].QUICLB
	if q[0].Encoding != "single_pass" || q[1].Encoding != "four_pass" || q[2].Encoding != "plaintext" {
		t.Fatalf("encodings: %q %q %q", q[0].Encoding, q[1].Encoding, q[2].Encoding)
	}
	c, err := q[0].Config()
	if err != nil || c.Key[0] != 0x8f || c.CIDLen() != 17 {
		t.Fatalf("config: %+v %v", c, err)
	}
	ids, err := q[0].ServerIDs()
	if err != nil || ids["10.0.0.2:4433"].String() != "0002" {
		t.Fatalf("server ids: %v %v", ids, err)
	}
	if *all[0].FlowIdleTimeoutMs != DefaultPassthroughFlowIdleMs || *all[0].MintRetry || all[0].RetryBackendDualStack || all[0].RetryNewTokens ||
		*all[0].InitialRatePerIP != DefaultPassthroughInitialRate || all[0].InitialBurstPerIP != DefaultPassthroughInitialBurst || all[0].Backhaul != "spp" {
		t.Fatalf("defaults: %+v", all[0])
	}
}

// TestPassthrough_ReportsEveryProblem: each rule names its file:line and
// key.
func TestPassthrough_ReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	loose := write(t, "loose.key", "8f95f09245765f80256934e50c66207f", 0o644)
	short := write(t, "short.key", "abcd", 0o600)
	tokenLoose := write(t, "token.key", strings.Repeat("ab", 32), 0o604)
	body := `
[[pools]]
name = "web"
backends = [{ address = "10.0.0.1:80" }]

[[listeners]]
address = "127.0.0.1:4433"
protocol = "udp"
backends = [{ address = "10.0.0.1:53", protocol = "udp" }]

[passthrough]
bind_addr = "127.0.0.1:4433"
backends = ["10.0.0.1:4433"]
pool = "web"
max_quic_connections = 3000000
min_client_dcid_len = 4
per_flow_backlog = 9000
max_dcid_len_routed = 21
flow_idle_timeout_ms = -1
retry_secret_path = "` + filepath.Join(dir, "missing", "r.key") + `"

[[passthrough.quic_lb]]
config_id = 7
server_id_len = 2
nonce_len = 4
encoding = "single_pass"
key_path = "` + loose + `"

[[passthrough.quic_lb]]
config_id = 1
server_id_len = 2
nonce_len = 4
servers = [{ address = "10.9.9.9:4433", server_id = "01" }, { address = "10.0.0.1:4433", server_id = "zz01" }]

[[passthrough.quic_lb]]
config_id = 1
server_id_len = 2
nonce_len = 4
key_path = "` + short + `"
encoding = "four_pass"

[[passthrough.quic_lb]]
config_id = 2
server_id_len = 2
nonce_len = 4
encoding = "plaintext"
key_path = "` + short + `"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5000"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5002"
backends = ["10.0.0.1:4433", "nope", "10.0.0.1:4433"]
backhaul = "shared"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5001"
pool = "web"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5003"
backends = ["10.0.0.1:4433"]
mint_retry = true
initial_rate_per_ip = -1
initial_burst_per_ip = 2000000

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5004"
backends = ["10.0.0.1:4433"]
mint_retry = true
retry_secret_path = "` + short + `"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5005"
backends = ["10.0.0.1:4433"]
mint_retry = true
retry_secret_path = "` + tokenLoose + `"

[[passthrough.listeners]]
bind_addr = "127.0.0.1:5006"
backends = ["10.0.0.1:4433"]
retry_backend_dual_stack = true
retry_new_tokens = true
`
	_, err := load(write(t, "p.toml", body, 0o600), func() []string { return nil })
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"p.toml:12: passthrough.bind_addr: address 127.0.0.1:4433 (udp) is already used by listeners[0]",
		"p.toml:54: passthrough.listeners[1].backends[1]: not host:port",
		"passthrough.listeners[1].backends[2]: backend 10.0.0.1:4433 listed twice",
		`p.toml:55: passthrough.listeners[1].backhaul: "shared": per_flow (an upstream socket per client) or spp`,
		"p.toml:14: passthrough.pool: set either pool or backends",
		"passthrough.max_quic_connections: 3000000 is out of range",
		"passthrough.min_client_dcid_len: 4 is out of range [8, 20]",
		"passthrough.per_flow_backlog: 9000 is out of range",
		"passthrough.max_dcid_len_routed: 21 is out of range",
		"passthrough.flow_idle_timeout_ms: -1 is out of range",
		"passthrough.retry_secret_path: ",
		"passthrough.quic_lb[0].config_id: 7 is out of range [0, 6]",
		"passthrough.quic_lb[0].key_path: " + loose + " has mode 0644: other users can read it;",
		"passthrough.quic_lb[1].encoding: no key_path",
		`passthrough.quic_lb[1].servers[0].address: "10.9.9.9:4433" is not a backend of this listener`,
		"passthrough.quic_lb[1].servers[0].server_id: 1 bytes, server_id_len is 2",
		`passthrough.quic_lb[1].servers[1].server_id: not hex: "zz01"`,
		"passthrough.quic_lb[2].config_id: config_id 1 is also quic_lb[1]'s",
		"passthrough.quic_lb[2].key_path: " + short + ": want a 16-byte key",
		"passthrough.quic_lb[3].key_path: a plaintext config takes no key",
		"passthrough.listeners[0].backends: a passthrough listener needs backends or a pool",
		"p.toml:64: passthrough.listeners[3].mint_retry: needs retry_secret_path",
		"passthrough.listeners[3].initial_rate_per_ip: -1 is out of range [0, 1000000]",
		"passthrough.listeners[3].initial_burst_per_ip: 2000000 is out of range [1, 1000000]",
		"passthrough.listeners[4].retry_secret_path: " + short + ": want a 32-byte token key (raw, or 64 hex digits), got 4 bytes",
		"passthrough.listeners[5].retry_secret_path: " + tokenLoose + " has mode 0604: other users can read it;",
		"passthrough.listeners[6].retry_backend_dual_stack: only applies with mint_retry = true",
		"passthrough.listeners[6].retry_new_tokens: only applies with mint_retry = true",
		`pools[0].backends[0].protocol: pool "web" serves passthrough listener "passthrough/127.0.0.1:5001": its backends are QUIC servers over UDP`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

// TestPassthrough_UnknownKeyAndEmptyTable: a typo is named, and a
// [passthrough] with keys but no bind_addr is an error, not ignored.
func TestPassthrough_UnknownKeyAndEmptyTable(t *testing.T) {
	_, err := load(write(t, "p.toml", "[passthrough]\nbackends = [\"10.0.0.1:1\"]\nmax_quic_conections = 5\n", 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "passthrough.max_quic_conections: unknown key (did you mean max_quic_connections?)") {
		t.Fatalf("err = %v", err)
	}
	_, err = load(write(t, "p.toml", "[passthrough]\nbackends = [\"10.0.0.1:1\"]\n", 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "passthrough.bind_addr: required") {
		t.Fatalf("err = %v", err)
	}
}
