package route

import "testing"

// Smooth weighted round robin is exact: over whole schedules every share
// equals its weight's (tolerance 0.1%).
func TestRoundRobin_Distribution(t *testing.T) {
	p := newTestPool(t, "round_robin", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.001)
}

// nginx's example: weights 5,1,1 give a a b a c a a.
func TestRoundRobin_IsSmooth(t *testing.T) {
	p := newTestPool(t, "round_robin", []int{5, 1, 1}, nil)
	var got []byte
	for i := range 7 {
		b, err := p.Pick(ipKey(i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, 'a'+byte(b.index))
	}
	if string(got) != "aabacaa" {
		t.Fatalf("sequence %s, want aabacaa", got)
	}
}

// A down backend's share goes to the others in proportion to their weights.
func TestRoundRobin_SkipsDownKeepingProportions(t *testing.T) {
	p := newTestPool(t, "round_robin", testWeights, nil)
	p.SetDown(p.backends[3], true)
	got := idleShares(t, p, picks, ipKey)
	if got[3] != 0 {
		t.Fatalf("down backend got %.4f", got[3])
	}
	wantShares(t, got[:3], testWeights[:3], 0.01)
}
