package route

import (
	"testing"
	"time"
)

// With equal latencies under load, ewma's shares follow weights:
// tolerance 3%.
func TestEWMA_Distribution_EqualLatency(t *testing.T) {
	p := newTestPool(t, "ewma", testWeights, nil)
	wantShares(t, loadedShares(t, p, picks, 1000, func(*Backend) int64 { return int64(time.Millisecond) }), testWeights, 0.03)
}

// A backend ten times slower than its peers gets a small share.
func TestEWMA_AvoidsSlowBackend(t *testing.T) {
	p := newTestPool(t, "ewma", []int{1, 1, 1}, nil)
	got := loadedShares(t, p, picks, 100, func(b *Backend) int64 {
		if b.index == 0 {
			return int64(10 * time.Millisecond)
		}
		return int64(time.Millisecond)
	})
	t.Logf("shares with backend 0 ten times slower: %.4f", got)
	if got[0] > 0.15 {
		t.Fatalf("slow backend share %.4f, want < 0.15", got[0])
	}
}

// A spike lifts the peak EWMA at once; it then decays towards new samples.
func TestEWMA_PeakThenDecay(t *testing.T) {
	p := newTestPool(t, "ewma", []int{1}, nil)
	b := p.backends[0]
	now := time.Now().UnixNano()
	b.observeLatency(now, 1e6)
	b.observeLatency(now+1, 100e6)
	if b.Latency() != 100e6 {
		t.Fatalf("after spike: %v, want 100e6", b.Latency())
	}
	b.observeLatency(now+int64(30*time.Second), 1e6)
	if l := b.Latency(); l > 10e6 {
		t.Fatalf("after 30 s: %v, want decayed below 10e6", l)
	}
}
