package accept

import (
	"net/netip"
	"testing"
)

func TestGate_PerIPAndInflightCaps(t *testing.T) {
	g := NewGate(2, 3)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 2 {
		if r := g.Admit(a); r != Admitted {
			t.Fatalf("connection %d from a refused: %v", i, r)
		}
	}
	if r := g.Admit(a); r != OverPerIP {
		t.Fatalf("third from a: %v, want OverPerIP", r)
	}
	if g.Admit(b) != Admitted {
		t.Fatal("b refused under the global cap")
	}
	if r := g.Admit(b); r != OverInflight {
		t.Fatalf("fourth overall: %v, want OverInflight", r)
	}
	g.Leave(a)
	if g.Admit(b) != Admitted || g.Inflight() != 3 {
		t.Fatalf("after a leave: inflight %d", g.Inflight())
	}
}
