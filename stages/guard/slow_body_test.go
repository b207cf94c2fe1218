package guard

import (
	"testing"
	"time"
)

func TestBodyRate_CutsATrickle(t *testing.T) {
	r := BodyRate{MinBps: 64, Window: 10 * time.Second}
	// One byte every 3 s: the window fills after four reads and fails.
	ok := true
	for i := 0; i < 4 && ok; i++ {
		ok = r.Observe(3*time.Second, 1)
	}
	if ok {
		t.Fatal("a 0.3 B/s trickle passed a 64 B/s floor")
	}
}

func TestBodyRate_PassesASteadyUpload(t *testing.T) {
	r := BodyRate{MinBps: 64, Window: 10 * time.Second}
	for i := range 100 {
		if !r.Observe(time.Second, 100) {
			t.Fatalf("100 B/s cut at read %d", i)
		}
	}
}

func TestBodyRate_DeadlineIsRestOfWindow(t *testing.T) {
	r := BodyRate{MinBps: 64, Window: 10 * time.Second}
	r.Observe(4*time.Second, 1000)
	if d := r.ReadDeadline(30 * time.Second); d != 6*time.Second {
		t.Fatalf("deadline %v, want 6s", d)
	}
	off := BodyRate{}
	if d := off.ReadDeadline(30 * time.Second); d != 30*time.Second {
		t.Fatalf("disabled floor changed the idle deadline: %v", d)
	}
}
