package guard

import (
	"testing"
	"time"
)

func TestRapidReset_TripsPastThresholdInOneWindow(t *testing.T) {
	r := RapidReset{Threshold: 3, Window: time.Second}
	t0 := time.Unix(100, 0)
	for i := range 3 {
		if !r.Reset(t0.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("reset %d tripped", i)
		}
	}
	if r.Reset(t0.Add(10 * time.Millisecond)) {
		t.Fatal("fourth reset in the window passed")
	}
	if !r.Reset(t0.Add(2 * time.Second)) {
		t.Fatal("a new window did not start afresh")
	}
}

func TestHeaderBlock_CapsFramesAndBytes(t *testing.T) {
	h := HeaderBlock{MaxFrames: 4, MaxEncoded: 100}
	if !h.Allow(4, 100) || h.Allow(5, 10) || h.Allow(1, 101) {
		t.Fatal("header block caps")
	}
}

func TestFrameRate_TokenBucket(t *testing.T) {
	r := FrameRate{PerSecond: 10}
	t0 := time.Unix(100, 0)
	for i := range 10 {
		if !r.Allow(t0) {
			t.Fatalf("frame %d refused", i)
		}
	}
	if r.Allow(t0) {
		t.Fatal("11th frame in the same instant passed")
	}
	if !r.Allow(t0.Add(200 * time.Millisecond)) {
		t.Fatal("no refill")
	}
}

func TestZeroWindow_Expires(t *testing.T) {
	z := ZeroWindow{Timeout: time.Second}
	t0 := time.Unix(100, 0)
	if z.Expired(time.Time{}, t0) || z.Expired(t0, t0.Add(999*time.Millisecond)) || !z.Expired(t0, t0.Add(time.Second)) {
		t.Fatal("zero window expiry")
	}
}

func TestStreamLimit_RefusesThenCapsLifetime(t *testing.T) {
	l := StreamLimit{MaxConcurrent: 2, MaxLifetime: 3}
	if l.Open(2) != StreamRefuse || l.Open(0) != StreamAccept || l.Open(1) != StreamAccept || l.Open(0) != StreamLast {
		t.Fatal("stream limit verdicts")
	}
}

func TestGlitches_GoAwayAt75ThenClose(t *testing.T) {
	g := Glitches{Threshold: 100}
	if g.Add(70) != GlitchNone || g.Add(5) != GlitchGoAway || g.Add(10) != GlitchNone || g.Add(15) != GlitchClose {
		t.Fatal("glitch actions")
	}
}
