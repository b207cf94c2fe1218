package route

import "testing"

// Weighted random: tolerance 1% (≥ 6 standard deviations at 100k picks).
func TestRandom_Distribution(t *testing.T) {
	p := newTestPool(t, "random", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}
