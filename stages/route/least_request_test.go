package route

import "testing"

// Idle, least_request draws by weight among ties: tolerance 1%.
func TestLeastRequest_Distribution_Idle(t *testing.T) {
	p := newTestPool(t, "least_request", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}

// Under load (1000 requests in flight) shares follow weights: tolerance 1%.
func TestLeastRequest_Distribution_Loaded(t *testing.T) {
	p := newTestPool(t, "least_request", testWeights, nil)
	wantShares(t, loadedShares(t, p, picks, 1000, nil), testWeights, 0.01)
}
