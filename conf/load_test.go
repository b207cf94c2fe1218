package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

func write(t *testing.T, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_DefaultConfigBoots(t *testing.T) {
	cfg, err := load("default.toml", func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	if l.HTTP.HeaderTimeoutMs != DefaultHeaderTimeoutMs || l.HTTP.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("listener defaults not applied: %+v", l.HTTP)
	}
	if cfg.Runtime.PerIPConnectionCap != DefaultPerIPConnCap || cfg.Runtime.HeaderUnderscorePolicy != "reject" {
		t.Fatalf("runtime defaults not applied: %+v", cfg.Runtime)
	}
	if len(l.Routes) != 2 || l.Routes[1].DirectResponse.Status != 200 {
		t.Fatalf("routes: %+v", l.Routes)
	}
}

func TestLoad_ExamplesBoot(t *testing.T) {
	files, _ := filepath.Glob("examples/*.toml")
	for _, f := range files {
		body, _ := os.ReadFile(f)
		if strings.Contains(string(body), "cert_path") {
			continue // needs certificates; covered by the stages tests
		}
		if _, err := load(f, func() []string { return nil }); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestLoad_ReportsEveryProblemWithFileAndKey(t *testing.T) {
	key := write(t, "k.pem", "x", 0o644)
	p := write(t, "bad.toml", `
[runtime]
per_ip_connection_cap = 0
max_inflight_connections = "lots"
bogus = 1

[[listeners]]
address = "127.0.0.1:1"
protocol = "h1s"
[listeners.tls]
cert_path = "/nonexistent.pem"
key_path = "`+key+`"
[[listeners.backends]]
address = "127.0.0.1:2"

[[listeners]]
address = "127.0.0.1:1"
protocol = "h2"
`, 0o600)
	_, err := load(p, func() []string { return nil })
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg := err.Error()
	// Type and unknown-key errors stop before validation; both must be
	// reported together, naming file, line and key.
	for _, want := range []string{p + ":5: runtime.bogus: unknown key", p + `:4: runtime.max_inflight_connections: want an integer, got the string "lots"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}

	p2 := write(t, "bad2.toml", `
[runtime]
per_ip_connection_cap = 0

[[listeners]]
address = "127.0.0.1:1"
protocol = "h1s"
[listeners.tls]
cert_path = "/nonexistent.pem"
key_path = "`+key+`"
[[listeners.backends]]
address = "127.0.0.1:2"

[[listeners]]
address = "127.0.0.1:1"
protocol = "h2"
`, 0o600)
	_, err = load(p2, func() []string { return nil })
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg = err.Error()
	for _, want := range []string{
		p2 + ":3: runtime.per_ip_connection_cap: 0 is out of range",
		p2 + ":9: listeners[0].tls.cert_path: cannot read certificate",
		p2 + ":10: listeners[0].tls.key_path: " + key + " has mode 0644: other users can read it;",
		p2 + ":16: listeners[1].protocol: \"h2\" is not a listener protocol",
		p2 + ":15: listeners[1].address: address 127.0.0.1:1 (tcp) is already used by listeners[0]",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestLoad_EnvOverrides(t *testing.T) {
	p := write(t, "c.toml", `
[[listeners]]
address = "127.0.0.1:1"
protocol = "tcp"
[[listeners.backends]]
address = "127.0.0.1:2"
`, 0o600)
	env := []string{"EG_OBSERVABILITY__METRICS_BIND=127.0.0.1:9999", "EG_RUNTIME__PER_IP_CONNECTION_CAP=7", "EG_LOG_LEVEL=debug"}
	cfg, err := load(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Observability.MetricsBind != "127.0.0.1:9999" || cfg.Runtime.PerIPConnectionCap != 7 {
		t.Fatalf("env not applied: %+v %+v", cfg.Observability, cfg.Runtime)
	}
}

func TestLoad_NonLoopbackAdminNeedsToken(t *testing.T) {
	p := write(t, "c.toml", `
[observability]
metrics_bind = "0.0.0.0:9901"
[[listeners]]
address = "127.0.0.1:1"
protocol = "tcp"
[[listeners.backends]]
address = "127.0.0.1:2"
`, 0o600)
	_, err := load(p, func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "observability.metrics_bind") {
		t.Fatalf("want a metrics_bind problem, got %v", err)
	}
}

func TestLoad_ResponseBodyCapIsSeparateFromTheRequestCap(t *testing.T) {
	cfg, err := load("default.toml", func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Listeners[0].HTTP; h.MaxResponseBodyBytes != 0 || h.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("defaults: request cap %d, response cap %d (want %d and 0: no response cap)", h.MaxBodyBytes, h.MaxResponseBodyBytes, DefaultMaxBodyBytes)
	}
	p := write(t, "neg.toml", `
[[listeners]]
address = "127.0.0.1:1"
protocol = "h1"
[listeners.http]
max_response_body_bytes = -1
[[listeners.backends]]
address = "127.0.0.1:2"
`, 0o600)
	_, err = load(p, func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "listeners[0].http.max_response_body_bytes") {
		t.Fatalf("negative response cap: %v", err)
	}
}

// TestLoad_ReferenceConfigAsWritten loads the reference implementation's
// example, extended with every supported key of its schema, unchanged but
// for certificate paths pointed at test files: h1s and quic listeners
// sharing an address without names must both load, under distinct names.
func TestLoad_ReferenceConfigAsWritten(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site")
	env := []string{
		"EG_LISTENERS__0__TLS__CERT_PATH=" + cert, "EG_LISTENERS__0__TLS__KEY_PATH=" + key,
		"EG_LISTENERS__1__QUIC__CERT_PATH=" + cert, "EG_LISTENERS__1__QUIC__KEY_PATH=" + key,
		"EG_LISTENERS__1__QUIC__RETRY_SECRET_PATH=" + filepath.Join(dir, "retry.key"),
	}
	cfg, err := load("testdata/reference.toml", func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	h1s, quic := cfg.Listeners[0], cfg.Listeners[1]
	if h1s.Name != "h1s/0.0.0.0:443" || quic.Name != "quic/0.0.0.0:443" {
		t.Fatalf("default names: %q, %q", h1s.Name, quic.Name)
	}
	if h1s.TLS.CertPath != cert || quic.QUIC.RetrySecretPath != filepath.Join(dir, "retry.key") {
		t.Fatalf("indexed overrides not applied: %+v %+v", h1s.TLS, quic.QUIC)
	}
	if h1s.HTTP.TotalTimeoutMs != 120000 || h1s.H2.MaxConcurrentStreams != 256 || *h1s.DrainTimeoutMs != 60000 ||
		h1s.WS.MaxMessageSizeBytes != 16777216 || h1s.GRPC.MaxDeadlineSeconds != 300 || len(h1s.Backends) != 2 {
		t.Fatalf("values as written not loaded: %+v", h1s)
	}
}

func TestLoad_ListenerNames(t *testing.T) {
	body := func(nameA, nameB string) string {
		return `
[[listeners]]
` + nameA + `
address = "127.0.0.1:8080"
protocol = "h1"
[[listeners.routes]]
direct_response = { status = 200 }
[[listeners]]
` + nameB + `
address = "127.0.0.1:5353"
protocol = "udp"
[[listeners.backends]]
address = "127.0.0.1:53"
protocol = "udp"
`
	}
	cfg, err := load(write(t, "a.toml", body("", ""), 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listeners[0].Name != "h1/127.0.0.1:8080" || cfg.Listeners[1].Name != "udp/127.0.0.1:5353" {
		t.Fatalf("default names: %q %q", cfg.Listeners[0].Name, cfg.Listeners[1].Name)
	}
	p := write(t, "b.toml", body(`name = "edge"`, `name = "edge"`), 0o600)
	_, err = load(p, func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), p+`:9: listeners[1].name: listener name "edge" is already used by listeners[0]`) {
		t.Fatalf("explicit duplicate names: %v", err)
	}
}

// TestLoad_EnvOverridesTypedBySchema: a value is read as its key's type,
// so a string key may hold digits and a list key a comma list, and an
// element of an array of tables is picked by number.
func TestLoad_EnvOverridesTypedBySchema(t *testing.T) {
	p := write(t, "c.toml", `
[[listeners]]
address = "127.0.0.1:1"
protocol = "tcp"
[[listeners.backends]]
address = "127.0.0.1:2"
[[listeners]]
address = "127.0.0.1:3"
protocol = "tcp"
[[listeners.backends]]
address = "127.0.0.1:4"
`, 0o600)
	env := []string{
		"EG_LISTENERS__1__NAME=12345",
		"EG_LISTENERS__1__BACKENDS__0__WEIGHT=7",
		"EG_SECURITY__TRUSTED_PROXIES=[10.0.0.0/8, 192.168.0.0/16]",
		"EG_RUNTIME__TLS__TLS13_ONLY=true",
	}
	cfg, err := load(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Listeners[1]; l.Name != "12345" || l.Backends[0].Weight != 7 || cfg.Listeners[0].Name != "tcp/127.0.0.1:1" {
		t.Fatalf("indexed overrides: %+v", cfg.Listeners)
	}
	if tp := cfg.Security.TrustedProxies; len(tp) != 2 || tp[1] != "192.168.0.0/16" || !cfg.Runtime.TLS.TLS13Only {
		t.Fatalf("list/bool overrides: %v %+v", tp, cfg.Runtime.TLS)
	}
}
