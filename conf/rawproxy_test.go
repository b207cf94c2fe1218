package conf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// modeBListener is a quic listener's head with its certificate, for the
// raw_proxy tests; extra goes inside [listeners.quic.raw_proxy].
func modeBListener(t *testing.T, dir, extra string) string {
	t.Helper()
	cert, key := testcert.Write(t, dir, "front")
	return `
[[listeners]]
address = "127.0.0.1:4433"
protocol = "quic"
[listeners.quic]
cert_path = "` + cert + `"
key_path = "` + key + `"
retry_secret_path = "` + filepath.Join(dir, "retry.key") + `"
[listeners.quic.raw_proxy]
` + extra
}

// TestRawProxy_RustBlockBootsUnchanged: the Rust ExpressGateway's
// [listeners.quic.raw_proxy] keys, every one written, load with their
// values, and its defaults apply when they are left out.
func TestRawProxy_RustBlockBootsUnchanged(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.Write(t, dir, "backend")
	body := modeBListener(t, dir, `backend_addr = "10.0.0.9:4433"
sni = "backend.internal"
backend_ca_path = "`+ca+`"
dgram_queue_cap = 64
max_relay_streams = 32
`)
	cfg, err := load(write(t, "b.toml", body, 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	r := l.QUIC.RawProxy
	if !l.ModeB() || r.BackendAddr != "10.0.0.9:4433" || r.SNI != "backend.internal" || r.BackendCAPath != ca ||
		r.DgramQueueCap != 64 || r.MaxRelayStreams != 32 || len(r.ALPN) != 0 {
		t.Fatalf("values: %+v", r)
	}
	// An IP address for sni is verified against the certificate's IPs.
	cfg, err = load(write(t, "d.toml", modeBListener(t, dir, `backend_addr = "10.0.0.9:4433"`+"\nsni = \"10.0.0.9\"\n"), 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Listeners[0].QUIC.RawProxy; r.DgramQueueCap != DefaultRawProxyDgramQueue || r.MaxRelayStreams != DefaultRawProxyRelayStream {
		t.Fatalf("defaults: %+v", r)
	}
}

// TestRawProxy_OursLoads: a named pool of quic backends and an alpn list.
func TestRawProxy_OursLoads(t *testing.T) {
	dir := t.TempDir()
	body := `
[[pools]]
name = "quic-up"
algorithm = "least_conn"
backends = [{ address = "10.0.0.1:4433", protocol = "quic" }, { address = "10.0.0.2:4433", protocol = "quic", tls_verify_hostname = "b.internal" }]
[pools.circuit_breaker]
max_connections = 10
` + modeBListener(t, dir, `alpn = ["eg-test/1", "h3"]`+"\n") + `
[listeners.quic.raw_proxy.ignored_never]
`
	// The stray table is refused by name: every key is known or an error.
	_, err := load(write(t, "p.toml", body, 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "listeners[0].quic.raw_proxy.ignored_never") {
		t.Fatalf("unknown key: %v", err)
	}
	body = strings.Replace(body, "[listeners.quic.raw_proxy.ignored_never]\n", "", 1)
	body = strings.Replace(body, "[listeners.quic.raw_proxy]", "[listeners.quic.raw_proxy]\n", 1)
	body = strings.Replace(body, `protocol = "quic"
[listeners.quic]`, `protocol = "quic"
pool = "quic-up"
[listeners.quic]`, 1)
	cfg, err := load(write(t, "p.toml", body, 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	if !l.ModeB() || l.Pool != "quic-up" || strings.Join(l.QUIC.RawProxy.ALPN, ",") != "eg-test/1,h3" {
		t.Fatalf("listener: %+v", l.QUIC.RawProxy)
	}
}

// TestRawProxy_ReportsEveryProblem: each rule names its file:line and key.
func TestRawProxy_ReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	notPEM := write(t, "ca.pem", "not a certificate", 0o644)
	body := `
[[pools]]
name = "web"
backends = [{ address = "10.0.0.1:80", protocol = "h2" }]
[pools.health_check]
type = "tcp"
` + modeBListener(t, dir, `backend_addr = "nope"
sni = "bad_name.example"
backend_ca_path = "`+notPEM+`"
dgram_queue_cap = -1
max_relay_streams = 10001
alpn = ["x", "", "x"]
`) + `
[[listeners]]
address = "127.0.0.1:4434"
protocol = "quic"
pool = "web"
[listeners.quic]
cert_path = "` + filepath.Join(dir, "front.crt") + `"
key_path = "` + filepath.Join(dir, "front.key") + `"
retry_secret_path = "` + filepath.Join(dir, "retry.key") + `"
allow_0rtt = true
early_data_policy = "reject"
[listeners.quic.raw_proxy]
backend_ca_path = "` + filepath.Join(dir, "missing.pem") + `"
[listeners.websocket]
max_tunnels = 3

[[listeners]]
address = "127.0.0.1:4435"
protocol = "quic"
[listeners.quic]
cert_path = "` + filepath.Join(dir, "front.crt") + `"
key_path = "` + filepath.Join(dir, "front.key") + `"
retry_secret_path = "` + filepath.Join(dir, "retry.key") + `"
[listeners.quic.raw_proxy]
sni = "ok.example"
[[listeners.backends]]
address = "10.0.0.3:4433"
protocol = "h3"
[[listeners.backends]]
address = "10.0.0.4:4433"
protocol = "quic"
tls_verify_peer = false

[[listeners]]
address = "127.0.0.1:4436"
protocol = "quic"
[listeners.quic]
cert_path = "` + filepath.Join(dir, "front.crt") + `"
key_path = "` + filepath.Join(dir, "front.key") + `"
retry_secret_path = "` + filepath.Join(dir, "retry.key") + `"
[[listeners.backends]]
address = "10.0.0.5:4433"
protocol = "quic"

[[listeners]]
address = "127.0.0.1:4437"
protocol = "quic"
backends = [{ address = "10.0.0.6:4433", protocol = "quic" }]
[listeners.quic]
cert_path = "` + filepath.Join(dir, "front.crt") + `"
key_path = "` + filepath.Join(dir, "front.key") + `"
retry_secret_path = "` + filepath.Join(dir, "retry.key") + `"
[listeners.quic.raw_proxy]
backend_addr = "10.0.0.6:4433"

[[pools]]
name = "q"
backends = [{ address = "10.0.0.7:4433", protocol = "quic" }]

[[listeners]]
address = "127.0.0.1:8080"
protocol = "h1"
[[listeners.routes]]
path_prefix = "/q"
pool = "q"
`
	_, err := load(write(t, "m.toml", body, 0o600), func() []string { return nil })
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`m.toml:16: listeners[0].quic.raw_proxy.backend_addr: not host:port: "nope"`,
		`m.toml:17: listeners[0].quic.raw_proxy.sni: not a DNS name or an IP address: "bad_name.example"`,
		"m.toml:18: listeners[0].quic.raw_proxy.backend_ca_path: " + notPEM + ": no PEM certificate in the file",
		"m.toml:19: listeners[0].quic.raw_proxy.dgram_queue_cap: -1 is out of range [1, 65536]",
		"m.toml:20: listeners[0].quic.raw_proxy.max_relay_streams: 10001 is out of range [1, 10000]",
		"m.toml:21: listeners[0].quic.raw_proxy.alpn[1]: an ALPN protocol is 1 to 255 bytes, got 0",
		`m.toml:21: listeners[0].quic.raw_proxy.alpn[2]: "x" is listed twice`,
		`m.toml:4: pools[0].backends[0].protocol: a raw_proxy (Mode B) listener relays QUIC: backend protocol must be quic, not "h2"`,
		`m.toml:6: pools[0].health_check.type: pool "web" serves raw_proxy listener "quic/127.0.0.1:4434": its quic backends are checked with type = "http" over HTTP/3, not "tcp"`,
		"listeners[1].quic.early_data_policy: a raw_proxy listener cannot answer 425",
		"listeners[1].quic.raw_proxy.backend_ca_path: cannot read CA bundle",
		"listeners[1].websocket: [listeners.websocket] is for HTTP fronts",
		`listeners[2].backends[0].protocol: a raw_proxy (Mode B) listener relays QUIC: backend protocol must be quic, not "h3"`,
		"listeners[2].backends[1].tls_verify_peer: a quic backend's certificate is always verified",
		"listeners[3].backends[0].protocol: a quic backend is for a raw_proxy (Mode B) listener",
		"listeners[4].quic.raw_proxy.backend_addr: set one of backend_addr, the listener's backends or its pool",
		`pools[1].backends[0].protocol: pool "q" serves h1 listener "h1/127.0.0.1:8080": a quic backend is for a raw_proxy (Mode B) listener`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	// A raw_proxy with nothing to relay to is named.
	_, err = load(write(t, "e.toml", modeBListener(t, dir, ""), 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "listeners[0].quic.raw_proxy.backend_addr: a raw_proxy listener needs backend_addr, backends or a pool") {
		t.Fatalf("empty raw_proxy: %v", err)
	}
}

// TestRawProxy_HealthCheckedPool: a pool serving Mode B may be checked
// over HTTP/3 (type http), and then each backend names the CA and name
// its probe verifies, since the probe does not read raw_proxy's.
func TestRawProxy_HealthCheckedPool(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.Write(t, dir, "backend")
	pool := func(backend string) string {
		return `
[[pools]]
name = "up"
backends = [` + backend + `]
[pools.health_check]
type = "http"
path = "/healthz"
`
	}
	listener := strings.Replace(modeBListener(t, dir, `sni = "b.internal"
backend_ca_path = "`+ca+`"
`), `protocol = "quic"`, `protocol = "quic"
pool = "up"`, 1)
	good := pool(`{ address = "10.0.0.1:4433", protocol = "quic", tls_ca_path = "`+ca+`", tls_verify_hostname = "b.internal" }`) + listener
	if _, err := load(write(t, "g.toml", good, 0o600), func() []string { return nil }); err != nil {
		t.Fatal(err)
	}
	bad := pool(`{ address = "10.0.0.1:4433", protocol = "quic" }`) + listener
	_, err := load(write(t, "b.toml", bad, 0o600), func() []string { return nil })
	if err == nil {
		t.Fatal("a health-checked pool without the probe's CA and name loaded")
	}
	for _, want := range []string{
		"pools[0].backends[0].tls_ca_path: pool \"up\" is health-checked: its probe verifies 10.0.0.1:4433 with the backend's tls_ca_path",
		"pools[0].backends[0].tls_verify_hostname: pool \"up\" is health-checked",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
