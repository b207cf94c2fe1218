package guard

import (
	"testing"
	"time"
)

// An idle connection's control frames are capped at the rate: a flood
// at one instant gets PerSecond frames and no more.
func TestFrameRate_IdleFloodStopsAtTheRate(t *testing.T) {
	r := FrameRate{PerSecond: 100}
	now := time.Unix(1000, 0)
	n := 0
	for r.Allow(now) {
		n++
	}
	if n != 100 {
		t.Fatalf("%d frames allowed at one instant, want 100", n)
	}
}

// Control frames that ride on DATA are paid for by it: a PING per 16
// bytes of DATA runs forever at one instant; the same PINGs with fewer
// bytes of work run out.
func TestFrameRate_WorkPaysForControlFrames(t *testing.T) {
	now := time.Unix(1000, 0)
	paid := FrameRate{PerSecond: 100}
	for i := range 1_000_000 {
		paid.Earn(WorkBytesPerFrame)
		if !paid.Allow(now) {
			t.Fatalf("frame %d refused though each came with %d bytes of work", i, WorkBytesPerFrame)
		}
	}
	cheap := FrameRate{PerSecond: 100}
	for i := range 1_000_000 {
		cheap.Earn(1) // a 1-byte DATA per PING: 1/16 of a token
		if !cheap.Allow(now) {
			if i < 100 {
				t.Fatalf("refused at %d, inside the bucket", i)
			}
			return
		}
	}
	t.Fatal("a PING flood paying 1 byte of DATA per frame was never stopped")
}

// Work done long ago buys no burst: earned tokens never pass the
// bucket's size.
func TestFrameRate_EarnedTokensAreCapped(t *testing.T) {
	r := FrameRate{PerSecond: 100}
	now := time.Unix(1000, 0)
	r.Allow(now)
	r.Earn(1 << 30)
	n := 1
	for r.Allow(now) {
		n++
	}
	if n != 101 {
		t.Fatalf("%d frames after a GiB of work, want the bucket's 100 (+1)", n)
	}
	if r.Earned != 1<<30/WorkBytesPerFrame || r.Frames != int64(n+1) {
		t.Fatalf("counts: earned %d, frames %d", r.Earned, r.Frames)
	}
}
