package conf

import (
	"strings"
	"testing"
)

// TestDNS_ReportsEveryProblemWithItsLine checks that each bad
// [runtime.dns] key is refused with its file, line and reason.
func TestDNS_ReportsEveryProblemWithItsLine(t *testing.T) {
	body := `[runtime.dns]
servers = ["127.0.0.1:53", "nope", ":53"]
timeout_ms = 1
min_ttl_ms = 5000
max_ttl_ms = 2000

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "h1"
backends = [{ address = "svc.example:80", protocol = "h1" }]
`
	p := write(t, "d.toml", body, 0o600)
	_, err := load(p, func() []string { return nil })
	if err == nil {
		t.Fatal("invalid [runtime.dns] loaded")
	}
	for _, want := range []string{
		p + ":2: runtime.dns.servers[1]: want host:port",
		p + ":2: runtime.dns.servers[2]: want host:port with a host",
		p + ":3: runtime.dns.timeout_ms: 1 is out of range",
		p + ":5: runtime.dns.max_ttl_ms: must be at least min_ttl_ms (5000), got 2000",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "servers[0]") || strings.Contains(err.Error(), "backends") {
		t.Errorf("a good server or a DNS-named backend was refused:\n%v", err)
	}
}

func TestDNS_Defaults(t *testing.T) {
	c := loadTOML(t, `[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "h1"
backends = [{ address = "svc.example:80", protocol = "h1" }]
`)
	d := c.Runtime.DNS
	if len(d.Servers) != 0 || d.TimeoutMs != DefaultDNSTimeoutMs || d.MinTTLMs != 1000 || d.MaxTTLMs != 300_000 {
		t.Fatalf("dns defaults: %+v", d)
	}
	if Reloads("runtime.dns.servers") {
		t.Fatal("runtime.dns.servers reported live; the resolvers keep the servers they were built with")
	}
}

func TestDNS_SRVValidated(t *testing.T) {
	body := `[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "h1"
pool = "p"

[[pools]]
name = "p"
[[pools.backends]]
srv = "_http._tcp.svc.example"
address = "10.0.0.1:80"
[[pools.backends]]
srv = "svc.example"
[[pools.backends]]
srv = "_http._tcp.ok.example"
`
	p := write(t, "s.toml", body, 0o600)
	_, err := load(p, func() []string { return nil })
	if err == nil {
		t.Fatal("invalid srv loaded")
	}
	for _, want := range []string{
		p + ":10: pools[0].backends[0].srv: srv and address exclude each other",
		p + ":13: pools[0].backends[1].srv: want an SRV name such as _http._tcp.service.example",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "backends[2]") {
		t.Errorf("a good srv entry was refused:\n%v", err)
	}
}
