package route

import "testing"

// Idle (all ties), least_conn draws by weight: tolerance 1%.
func TestLeastConn_Distribution_Idle(t *testing.T) {
	p := newTestPool(t, "least_conn", testWeights, nil)
	wantShares(t, idleShares(t, p, picks, ipKey), testWeights, 0.01)
}

// Under load (1000 connections open, each for 1000 picks) connections per
// unit of weight are equalised, so shares follow weights: tolerance 1%.
func TestLeastConn_Distribution_Loaded(t *testing.T) {
	p := newTestPool(t, "least_conn", testWeights, nil)
	wantShares(t, loadedShares(t, p, picks, 1000, nil), testWeights, 0.01)
}

// The backend holding the most connections is avoided.
func TestLeastConn_AvoidsBusy(t *testing.T) {
	p := newTestPool(t, "least_conn", []int{1, 1}, nil)
	for range 5 {
		p.backends[0].ConnOpen()
	}
	for i := range 5 {
		b, _ := p.Pick(ipKey(i))
		if b.index != 1 {
			t.Fatalf("pick %d went to the busy backend", i)
		}
		b.ConnOpen()
	}
}
