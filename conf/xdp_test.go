package conf

import (
	"strings"
	"testing"
)

const xdpBase = `
[runtime]
xdp_enabled = true
xdp_interface = "eth0"

[[listeners]]
name = "dns"
address = "10.0.0.100:53"
protocol = "udp"
backends = [{ address = "10.0.1.1:53", protocol = "udp" }]

[[pools]]
name = "web"
backends = [{ address = "10.0.1.1:80", weight = 3 }, { address = "10.0.1.2:80" }]
`

func TestXDP_ValidServicesLoadWithDefaults(t *testing.T) {
	body := xdpBase + `
[xdp]
source_v4 = "10.0.0.2"
deny = ["192.0.2.0/24", "2001:db8::1"]

[[xdp.services]]
vip = "10.0.0.100"
port = 80
protocol = "tcp"
pool = "web"

[[xdp.services]]
listener = "dns"

[[xdp.services]]
vip = "10.0.0.100"
port = 443
protocol = "tcp"
backends = [{ address = "10.0.1.3:443", weight = 5 }]
`
	cfg, err := load(write(t, "x.toml", body, 0o600), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	x := cfg.XDP
	if x.OverCap != "pass" || len(x.Services) != 3 {
		t.Fatalf("xdp: %+v", x)
	}
	if x.Services[0].Name != "tcp/10.0.0.100:80" || x.Services[1].Name != "dns" {
		t.Fatalf("names: %q %q", x.Services[0].Name, x.Services[1].Name)
	}
	if b := x.Services[2].Backends[0]; b.Weight != 5 || b.Protocol != "tcp" {
		t.Fatalf("backend defaults: %+v", b)
	}
	if u := cfg.Listeners[0].UDP; u.IdleTimeoutMs != DefaultUDPIdleTimeoutMs || u.MaxFlows != DefaultUDPMaxFlows {
		t.Fatalf("udp defaults: %+v", u)
	}
}

func TestXDP_ReportsEveryProblemWithItsKey(t *testing.T) {
	body := xdpBase + `
[listeners.udp]
idle_timeout_ms = 5
max_flows = -1

[[listeners]]
name = "web"
address = "0.0.0.0:8080"
protocol = "tcp"
backends = [{ address = "10.0.1.1:8080" }]

[xdp]
source_v4 = "fd00::1"
gateway_mac = "zz"
over_cap = "maybe"
deny = ["10.0.0.0/33"]

[[xdp.services]]
vip = "nope"
port = 0
protocol = "sctp"
backends = [{ address = "10.0.1.1:81" }]

[[xdp.services]]
vip = "10.0.0.100"
port = 80
protocol = "tcp"
pool = "missing"

[[xdp.services]]
listener = "web"

[[xdp.services]]
listener = "dns"
port = 53

[[xdp.services]]
vip = "10.0.0.100"
port = 80
protocol = "tcp"
backends = [{ address = "backend.example:80" }]
`
	_, err := load(write(t, "x.toml", body, 0o600), func() []string { return nil })
	if err == nil {
		t.Fatal("invalid [xdp] loaded")
	}
	for _, want := range []string{
		"listeners[0].udp.idle_timeout_ms",
		"listeners[0].udp.max_flows",
		"xdp.source_v4: not a usable IPv4",
		"xdp.gateway_mac",
		"xdp.over_cap",
		"xdp.deny[0]",
		"xdp.services[0].vip",
		"xdp.services[0].port",
		"xdp.services[0].protocol",
		"xdp.services[1].pool: no [[pools]] entry",
		"xdp.services[2].listener: listener \"web\" address",
		"xdp.services[3].listener: a listener service takes",
		"xdp.services[4]: tcp 10.0.0.100:80 is already",
		"xdp.services[4].backends[0].address: XDP service",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestXDP_BackendPortMustBeTheServicePort(t *testing.T) {
	body := xdpBase + `
[xdp]
source_v4 = "10.0.0.2"

[[xdp.services]]
vip = "10.0.0.100"
port = 8080
protocol = "tcp"
pool = "web"
`
	_, err := load(write(t, "x.toml", body, 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "pools.web.backends[0].address: XDP forwards with direct server return") {
		t.Fatalf("want the DSR port problem, got %v", err)
	}
}

func TestXDP_SourceRequiredForTheBackendFamily(t *testing.T) {
	body := xdpBase + `
[[xdp.services]]
vip = "fd00::100"
port = 80
protocol = "tcp"
backends = [{ address = "[fd00::11]:80" }]
`
	_, err := load(write(t, "x.toml", body, 0o600), func() []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "xdp.source_v6: required") {
		t.Fatalf("want source_v6 required, got %v", err)
	}
}
