package route

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/expressgateway/expressgateway/conf"
)

func TestShouldRetry_Table(t *testing.T) {
	dial := &DialError{Err: errors.New("connection refused")}
	refused := &RefusedError{Err: errors.New("REFUSED_STREAM")}
	for _, tc := range []struct {
		name    string
		err     error
		method  string
		attempt int
		body    Body
		want    bool
	}{
		{"nil error", nil, "GET", 1, BodyNone, false},
		{"dial GET", dial, "GET", 1, BodyNone, true},
		{"dial POST", dial, "POST", 1, BodyNone, true},
		{"dial wrapped POST", fmt.Errorf("upstream: %w", dial), "POST", 1, BodyNone, true},
		{"refused PATCH", refused, "PATCH", 1, BodyNone, true},
		{"dial but body gone", dial, "POST", 1, BodyLost, false},
		{"reset GET", io.ErrUnexpectedEOF, "GET", 1, BodyNone, true},
		{"reset PUT", io.ErrUnexpectedEOF, "PUT", 1, BodyNone, true},
		{"reset DELETE", io.ErrUnexpectedEOF, "DELETE", 1, BodyNone, true},
		{"reset POST", io.ErrUnexpectedEOF, "POST", 1, BodyNone, false},
		{"reset PATCH", io.ErrUnexpectedEOF, "PATCH", 1, BodyNone, false},
		{"timeout GET", context.DeadlineExceeded, "GET", 1, BodyNone, true},
		{"timeout GET body gone", context.DeadlineExceeded, "GET", 1, BodyLost, false},
		{"client cancelled", context.Canceled, "GET", 1, BodyNone, false},
		{"503 GET", &StatusError{Status: 503}, "GET", 1, BodyNone, true},
		{"502 HEAD", &StatusError{Status: 502}, "HEAD", 1, BodyNone, true},
		{"503 POST", &StatusError{Status: 503}, "POST", 1, BodyNone, false},
		{"500 GET (not in on_status)", &StatusError{Status: 500}, "GET", 1, BodyNone, false},
		{"no backend", ErrNoBackend, "GET", 1, BodyNone, false},
		{"circuit open", ErrCircuitOpen, "GET", 1, BodyNone, false},
		{"second retry", dial, "GET", 2, BodyNone, true},
		{"past attempts", dial, "GET", 3, BodyNone, false},
		{"dial POST body held", dial, "POST", 1, BodyHeld, true},
		{"refused PUT body held", refused, "PUT", 1, BodyHeld, true},
		{"reset PUT body held", io.ErrUnexpectedEOF, "PUT", 1, BodyHeld, false},
		{"503 PUT body held", &StatusError{Status: 503}, "PUT", 1, BodyHeld, false},
	} {
		p := newTestPool(t, "round_robin", []int{1}, nil)
		if got := p.Retry().ShouldRetry(tc.err, tc.method, tc.attempt, tc.body); got != tc.want {
			t.Errorf("%s: ShouldRetry = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The budget allows budget_percent of the window's requests plus
// min_retries_per_sec per second, counts what it refuses, and refills as
// the window moves on.
func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPool(t, "round_robin", []int{1, 1}, func(c *conf.Pool) {
			c.Retry = &conf.Retry{BudgetPercent: 20, MinRetriesPerSec: 1}
		})
		r := p.Retry()
		for i := range 100 {
			p.backends[i%2].Begin().End(Outcome{Status: 200})
		}
		granted := 0
		for range 50 {
			if r.ShouldRetry(io.ErrUnexpectedEOF, "GET", 1, BodyNone) {
				granted++
			}
		}
		if granted != 21 { // 20% of 100 + 1 per second × 1 s
			t.Fatalf("granted %d retries, want 21", granted)
		}
		if r.mRetries.Get() != 21 || r.mExhausted.Get() != 29 {
			t.Fatalf("retries_total %d, retry_budget_exhausted_total %d; want 21, 29", r.mRetries.Get(), r.mExhausted.Get())
		}
		time.Sleep(3 * time.Second) // min_retries_per_sec accrues with time
		if !r.ShouldRetry(io.ErrUnexpectedEOF, "GET", 1, BodyNone) {
			t.Fatal("no retry after the per-second minimum accrued")
		}
		time.Sleep(20 * time.Second) // the window has moved past it all
		granted = 0
		for range 50 {
			if r.ShouldRetry(io.ErrUnexpectedEOF, "GET", 1, BodyNone) {
				granted++
			}
		}
		if granted == 0 || granted >= 50 {
			t.Fatalf("after the window: granted %d", granted)
		}
	})
}

// A try the backend never started (connect refused, REFUSED_STREAM) is
// retried past an empty budget, and spends none of it: a dead backend in
// a live pool does not turn into failed requests once 20% of them hit it.
func TestRetryBudget_UnstartedTriesSpendNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPool(t, "round_robin", []int{1, 1}, func(c *conf.Pool) {
			c.Retry = &conf.Retry{BudgetPercent: 20, MinRetriesPerSec: 1}
		})
		r := p.Retry()
		for i := range 10 {
			p.backends[i%2].Begin().End(Outcome{Status: 200})
		}
		for i := range 100 {
			err := error(&DialError{Err: errors.New("connection refused")})
			if i%2 == 1 {
				err = &RefusedError{Err: errors.New("REFUSED_STREAM")}
			}
			if !r.ShouldRetry(err, "POST", 1, BodyHeld) {
				t.Fatalf("unstarted try %d not retried", i)
			}
		}
		granted := 0
		for range 10 {
			if r.ShouldRetry(io.ErrUnexpectedEOF, "GET", 1, BodyNone) {
				granted++
			}
		}
		if granted != 3 { // 20% of 10 + 1: untouched by the 100 above
			t.Fatalf("the budget granted %d retries after the unstarted ones, want 3", granted)
		}
		if r.ShouldRetry(&DialError{Err: errors.New("refused")}, "GET", r.Attempts()+1, BodyNone) {
			t.Fatal("attempts still bound unstarted tries")
		}
	})
}
