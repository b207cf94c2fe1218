package guard

import "time"

// BodyRate enforces a minimum upload rate (slow POST, the body form of
// slowloris): over each window of time spent waiting for the client, at
// least MinBps × window bytes must arrive. Time the decoder spends blocked on
// a full link (our backend being slow) does not count against the client.
//
// The reference only logs this (its F-RES-5); here a trickle is cut off.
type BodyRate struct {
	MinBps int           // 0 disables the floor
	Window time.Duration // length of one measurement window

	waited time.Duration // read-wait time in the current window
	bytes  int64         // bytes received in the current window
}

// Reset starts a new body.
func (r *BodyRate) Reset() { r.waited, r.bytes = 0, 0 }

// ReadDeadline returns how long the next read may wait before the window
// must be judged: the rest of the window, or idle if that is sooner.
func (r *BodyRate) ReadDeadline(idle time.Duration) time.Duration {
	if r.MinBps <= 0 {
		return idle
	}
	return max(min(idle, r.Window-r.waited), time.Millisecond)
}

// Observe records a read that waited for d and brought n bytes. It returns
// false when the window is over and the rate was below the floor.
func (r *BodyRate) Observe(d time.Duration, n int) bool {
	if r.MinBps <= 0 {
		return true
	}
	r.waited += d
	r.bytes += int64(n)
	if r.waited < r.Window {
		return true
	}
	need := int64(r.MinBps) * int64(r.Window/time.Second)
	ok := r.bytes >= need
	r.waited, r.bytes = 0, 0
	return ok
}
