package route

import (
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// A client without the cookie is placed by the fallback and told to set
// it; with it, it stays; when its backend goes down it moves and gets a
// new cookie. Fresh clients spread by weight (fallback round_robin).
func TestSticky_KeepsClientOnItsBackend(t *testing.T) {
	p := newTestPool(t, "sticky", testWeights, func(c *conf.Pool) { c.Sticky = &conf.Sticky{Cookie: "sid", TTLSec: 60} })
	wantShares(t, idleShares(t, p, picks, func(int) Key { return Key{Head: newHead("/", "", "")} }), testWeights, 0.001)

	k := Key{Head: newHead("/", "", "")}
	b, err := p.Pick(k)
	if err != nil {
		t.Fatal(err)
	}
	sc := p.StickyCookie(k, b)
	if !strings.HasPrefix(sc, "sid=") || !strings.Contains(sc, "Max-Age=60") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	cookie := strings.SplitN(sc, ";", 2)[0]
	k = Key{Head: newHead("/", "cookie", "other=1; "+cookie)}
	for range 100 {
		if got, _ := p.Pick(k); got != b {
			t.Fatalf("sticky client moved from %s to %s", b.Address, got.Address)
		}
	}
	if sc := p.StickyCookie(k, b); sc != "" {
		t.Fatalf("cookie already right, still asked to set %q", sc)
	}
	p.SetDown(b, true)
	b2, _ := p.Pick(k)
	if b2 == b {
		t.Fatal("picked a down backend")
	}
	if sc := p.StickyCookie(k, b2); !strings.HasPrefix(sc, "sid=") || strings.HasPrefix(sc, cookie+";") {
		t.Fatalf("moved client got Set-Cookie %q", sc)
	}
}

// A forged or stale cookie is ignored.
func TestSticky_UnknownCookieFallsBack(t *testing.T) {
	p := newTestPool(t, "sticky", []int{1, 1}, nil)
	k := Key{Head: newHead("/", "cookie", conf.DefaultStickyCookie+"=nope")}
	b, err := p.Pick(k)
	if err != nil || b == nil {
		t.Fatal(err)
	}
	if p.StickyCookie(k, b) == "" {
		t.Fatal("no cookie set for a client with an unknown one")
	}
}
