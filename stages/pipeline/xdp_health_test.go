package pipeline

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

const xdpHealthStateConfig = `
[[listeners]]
name = "web"
address = "127.0.0.1:0"
protocol = "tcp"
pool = "web"

[[pools]]
name = "web"
backends = [
  { address = "10.9.0.1:80" },
  { address = "10.9.0.2:80", weight = 3 },
  { address = "10.9.0.3:80" },
]

[xdp]
gateway_mac = "02:00:00:00:00:01"
source_v4 = "10.9.0.100"

[[xdp.services]]
vip = "10.9.0.200"
port = 80
protocol = "tcp"
pool = "web"

[[xdp.services]]
listener = "web"

[[xdp.services]]
vip = "10.9.0.201"
port = 80
protocol = "tcp"
backends = [{ address = "10.9.0.1:80" }]
`

// Issue 5: the tables give an unhealthy backend of a pool weight 0, as
// Pool.Pick skips it, and keep every weight while the pool panics.
func TestXDPState_DrainsUnhealthyPoolBackends(t *testing.T) {
	cfg := loadConfig(t, xdpHealthStateConfig)
	pools, err := buildPools(cfg, nil, newBackendConns(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	weights := func() [][]uint32 {
		t.Helper()
		st, fed, err := xdpState(cfg, pools, map[netip.Addr]net.HardwareAddr{})
		if err != nil {
			t.Fatal(err)
		}
		if len(fed) != 1 || fed[0] != pools["web"] {
			t.Fatalf("fed pools %v, want web once", fed)
		}
		var out [][]uint32
		for _, s := range st.Services {
			var w []uint32
			for _, b := range s.Backends {
				w = append(w, b.Weight)
			}
			out = append(out, w)
		}
		return out
	}
	check := func(what string, want [][]uint32) {
		t.Helper()
		if got := weights(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%s: weights %v, want %v", what, got, want)
		}
	}
	p := pools["web"]
	check("all healthy", [][]uint32{{1, 3, 1}, {1, 3, 1}, {1}})
	p.SetDown(p.Backends()[1], true)
	check("b2 down", [][]uint32{{1, 0, 1}, {1, 0, 1}, {1}})
	if !p.TryEject(p.Backends()[2], 2) {
		t.Fatal("eject refused")
	}
	// 1 of 3 healthy is under the default 50% panic threshold: Pick
	// routes to all, so XDP does too.
	check("panic", [][]uint32{{1, 3, 1}, {1, 3, 1}, {1}})
	p.SetDown(p.Backends()[1], false)
	check("b3 ejected", [][]uint32{{1, 3, 0}, {1, 3, 0}, {1}})
	p.Uneject(p.Backends()[2])
	check("all back", [][]uint32{{1, 3, 1}, {1, 3, 1}, {1}})
	if _, _, err := xdpState(cfg, nil, map[netip.Addr]net.HardwareAddr{}); err != nil {
		t.Fatalf("without pools: %v", err)
	}
}
