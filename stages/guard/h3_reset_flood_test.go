package guard

import (
	"testing"
	"time"
)

func TestResetFlood_TripsPastTheCapWithinAWindow(t *testing.T) {
	r := ResetFlood{Max: 3, Window: time.Second}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if r.Observe(t0.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("tripped at reset %d", i+1)
		}
	}
	if !r.Observe(t0.Add(10 * time.Millisecond)) {
		t.Fatal("4th reset in the window did not trip")
	}
}

func TestResetFlood_NewWindowStartsOver(t *testing.T) {
	r := ResetFlood{Max: 2, Window: time.Second}
	t0 := time.Unix(1000, 0)
	r.Observe(t0)
	r.Observe(t0)
	if r.Observe(t0.Add(time.Second)) {
		t.Fatal("a reset in a fresh window tripped")
	}
}

func TestResetFlood_ZeroMaxIsOff(t *testing.T) {
	r := ResetFlood{}
	for range 1000 {
		if r.Observe(time.Unix(1, 0)) {
			t.Fatal("tripped with the rule off")
		}
	}
}
