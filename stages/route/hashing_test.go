package route

import (
	"math"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// hashOwners maps n client keys to backend addresses.
func hashOwners(t *testing.T, p *Pool, n int, key func(int) Key) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		b, err := p.Pick(key(i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b.Address
	}
	return out
}

// checkStability: taking one of n backends out (down, or removed from the
// config and the pool rebuilt) moves its own keys and at most tol more.
func checkStability(t *testing.T, algo string) {
	const n = 10
	weights := make([]int, n)
	for i := range weights {
		weights[i] = 1
	}
	full := newTestPool(t, algo, weights, nil)
	before := hashOwners(t, full, picks, ipKey)
	gone := full.backends[4].Address

	check := func(name string, after []string, tol float64) {
		moved, movedOthers := 0, 0
		for i := range before {
			if before[i] != after[i] {
				moved++
				if before[i] != gone {
					movedOthers++
				}
			}
		}
		frac := float64(moved) / picks
		t.Logf("%s: %.4f of keys moved (%.4f not from the removed backend)", name, frac, float64(movedOthers)/picks)
		if frac > 1.0/n+tol {
			t.Errorf("%s: %.4f of keys moved, want ≤ 1/%d + %.2f", name, frac, n, tol)
		}
	}
	full.SetDown(full.backends[4], true)
	check("down", hashOwners(t, full, picks, ipKey), 0.01)

	smaller := newTestPool(t, algo, weights[:n-1], func(c *conf.Pool) {
		c.Backends = append(c.Backends[:4:4], c.Backends[5:]...)
		c.Backends = append(c.Backends, conf.Backend{Address: "10.0.0.10:80", Protocol: "h1", Weight: 1})
	})
	check("removed", hashOwners(t, smaller, picks, ipKey), 0.03)
}

func TestRingHash_Distribution(t *testing.T) {
	p := newTestPool(t, "ring_hash", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.02)
}

func TestRingHash_Stability(t *testing.T) { checkStability(t, "ring_hash") }

func TestMaglev_Distribution(t *testing.T) {
	p := newTestPool(t, "maglev", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}

func TestMaglev_Stability(t *testing.T) { checkStability(t, "maglev") }

func TestSourceIP_Distribution(t *testing.T) {
	p := newTestPool(t, "source_ip", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}

func TestSourceIP_Stability(t *testing.T) { checkStability(t, "source_ip") }

// Every hashing picker sends one key to one backend, picks after picks.
func TestHashing_SameKeySameBackend(t *testing.T) {
	for _, algo := range []string{"ring_hash", "maglev", "source_ip"} {
		p := newTestPool(t, algo, testWeights, nil)
		for i := range 100 {
			first, _ := p.Pick(ipKey(i))
			for range 10 {
				if b, _ := p.Pick(ipKey(i)); b != first {
					t.Fatalf("%s: key %d moved from %s to %s", algo, i, first.Address, b.Address)
				}
			}
		}
	}
}

// Hash keys: a header, a cookie and the path (without its query) each pin
// requests; requests lacking them fall back to the source IP.
func TestHashKey_HeaderCookiePath(t *testing.T) {
	for _, tc := range []struct {
		hashKey string
		head    func(v string) *testHead
	}{
		{"header:X-User", func(v string) *testHead { return newHead("/", "x-user", v) }},
		{"cookie:sid", func(v string) *testHead { return newHead("/", "cookie", "a=1; sid="+v+"; b=2") }},
		{"path", func(v string) *testHead { return newHead("/"+v+"?q="+v+"x", "", "") }},
	} {
		p := newTestPool(t, "maglev", []int{1, 1, 1, 1}, func(c *conf.Pool) { c.HashKey = tc.hashKey })
		counts := map[string]int{}
		for i := range 4000 {
			v := string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
			k1 := Key{Src: ipKey(i).Src, Head: tc.head(v)}
			k2 := Key{Src: ipKey(i + 1).Src, Head: tc.head(v)}
			b1, _ := p.Pick(k1)
			b2, _ := p.Pick(k2)
			if b1 != b2 {
				t.Fatalf("%s: value %q went to %s and %s", tc.hashKey, v, b1.Address, b2.Address)
			}
			counts[b1.Address]++
		}
		for a, c := range counts {
			if math.Abs(float64(c)/4000-0.25) > 0.05 {
				t.Errorf("%s: %s got %d of 4000", tc.hashKey, a, c)
			}
		}
		// Without the key: the source IP decides.
		bare := Key{Src: ipKey(7).Src, Head: newHead("", "", "")}
		b1, _ := p.Pick(bare)
		b2, _ := p.Pick(Key{Src: ipKey(7).Src})
		if b1 != b2 && tc.hashKey != "path" {
			t.Errorf("%s: missing key did not fall back to the source IP", tc.hashKey)
		}
	}
}

// With equal weights source_ip compares hashes without the logarithm; the
// split must stay even.
func TestSourceIP_EqualWeightsDistribution(t *testing.T) {
	w := []int{2, 2, 2, 2, 2}
	p := newTestPool(t, "source_ip", w, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), w, 0.01)
}

// Key.Hash overrides the hash key: one source IP with different flow
// hashes spreads over the pool, and one flow hash stays on one backend.
func TestKeyHash_OverridesHashKey(t *testing.T) {
	for _, algo := range []string{"ring_hash", "maglev"} {
		p := newTestPool(t, algo, []int{1, 1, 1, 1}, nil)
		k := ipKey(7)
		seen := map[string]bool{}
		for i := range 200 {
			k.Hash = uint64(i)*0x9e3779b97f4a7c15 + 1
			b, _ := p.Pick(k)
			if again, _ := p.Pick(k); again != b {
				t.Fatalf("%s: hash %d moved", algo, k.Hash)
			}
			seen[b.Address] = true
		}
		if len(seen) != 4 {
			t.Fatalf("%s: one source IP with 200 flow hashes reached %d of 4 backends", algo, len(seen))
		}
	}
}
