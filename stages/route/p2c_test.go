package route

import "testing"

// Idle, p2c keeps its first weighted draw: tolerance 1%.
func TestP2C_Distribution_Idle(t *testing.T) {
	p := newTestPool(t, "p2c", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}

// Under load, two choices equalise requests per unit of weight closely
// enough: tolerance 2%.
func TestP2C_Distribution_Loaded(t *testing.T) {
	p := newTestPool(t, "p2c", testWeights, nil)
	wantShares(t, loadedShares(t, p, picks, 1000, nil), testWeights, 0.02)
}
