package route

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
)

// RetryPolicy says whether a failed try may be retried on another backend:
// by what failed, the method, the number of tries so far, whether the body
// can be sent again, and the pool's retry budget.
//
// The budget is Linkerd's and Finagle's: over the last budgetWindow
// seconds, retries of tries a backend may have worked on may be at most
// budget_percent of the pool's requests plus min_retries_per_sec per
// second. A failing pool then sees at most 1.2× its load (at the default
// 20%), never a retry storm. A try the backend never started (connect
// refused, REFUSED_STREAM) cost it nothing, and its retry spends no
// budget.
type RetryPolicy struct {
	pool      *Pool
	attempts  int
	perTry    time.Duration
	pct       int64
	minPerSec int64
	onStatus  [100]bool // 500..599
	maxReplay int64     // request body bytes a retry may send again

	retries atomic.Uint64 // retries granted, ever

	mu    sync.Mutex
	snaps [budgetWindow + 1]budgetSnap // one per second, by sec % len

	mRetries, mExhausted *metrics.Counter
}

// budgetSnap is the pool's request and retry totals seen in second sec.
type budgetSnap struct {
	sec               int64
	requests, retries uint64
}

func newRetryPolicy(p *Pool, c *conf.Retry, set *metrics.Set) *RetryPolicy {
	r := &RetryPolicy{
		pool:      p,
		attempts:  conf.DefaultRetryAttempts,
		pct:       conf.DefaultRetryBudgetPercent,
		minPerSec: conf.DefaultRetryMinRetriesPerSec,
		maxReplay: conf.DefaultRetryMaxReplayBodyBytes,
	}
	r.mRetries, r.mExhausted = retryCounters(set, p.name)
	onStatus := []int{502, 503}
	if c != nil {
		if c.Attempts != nil {
			r.attempts = *c.Attempts
		}
		r.perTry = time.Duration(c.PerTryTimeoutMs) * time.Millisecond
		if c.BudgetPercent != 0 {
			r.pct = int64(c.BudgetPercent)
		}
		if c.MinRetriesPerSec != 0 {
			r.minPerSec = int64(c.MinRetriesPerSec)
		}
		if c.OnStatus != nil {
			onStatus = c.OnStatus
		}
		if c.MaxReplayBodyBytes != nil {
			r.maxReplay = *c.MaxReplayBodyBytes
		}
	}
	for _, s := range onStatus {
		if s >= 500 && s <= 599 {
			r.onStatus[s-500] = true
		}
	}
	sec := time.Now().Unix()
	r.snaps[sec%int64(len(r.snaps))] = budgetSnap{sec: sec}
	return r
}

// Attempts returns how many retries may follow the first try.
func (r *RetryPolicy) Attempts() int { return r.attempts }

// MaxReplayBodyBytes returns the largest request body a retry may hold
// to send again (0: a request with a body is never retried).
func (r *RetryPolicy) MaxReplayBodyBytes() int64 { return r.maxReplay }

// Body says what a retry could send again of a request's body.
type Body uint8

// The request bodies a retry sees.
const (
	// BodyNone: the request has no body; it is sent again as it was.
	BodyNone Body = iota
	// BodyHeld: the body sent so far is held whole (within
	// max_replay_body_bytes) and can be sent again, but only where the
	// backend provably never processed the request: a body that reached a
	// backend is never delivered twice.
	BodyHeld
	// BodyLost: part of the body streamed to the failed try and was not
	// kept; the request cannot be retried.
	BodyLost
)

// PerTryTimeout returns the bound of each try, 0 when only the request's
// own timeout applies.
func (r *RetryPolicy) PerTryTimeout() time.Duration { return r.perTry }

// TryTimer bounds one try by the per-try timeout: it cancels the try's
// context with ErrTryTimeout unless stopped first. A nil *TryTimer (no
// per-try timeout) is valid and does nothing.
type TryTimer struct {
	t      *time.Timer
	cancel context.CancelCauseFunc
}

// TryContext returns the context of one try, bounded by the per-try
// timeout when one is set. The caller calls Stop once the response head
// arrived (the body is bounded by the upstream's body timeout, not by
// this) and Cancel when the try failed.
func (r *RetryPolicy) TryContext(ctx context.Context) (context.Context, *TryTimer) {
	if r == nil || r.perTry <= 0 {
		return ctx, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	return ctx, &TryTimer{t: time.AfterFunc(r.perTry, func() { cancel(ErrTryTimeout) }), cancel: cancel}
}

// Stop stops the timer; it returns false when the timeout already fired
// (the try's context is cancelled: treat the try as timed out).
func (t *TryTimer) Stop() bool { return t == nil || t.t.Stop() }

// Cancel releases the try's context.
func (t *TryTimer) Cancel() {
	if t != nil {
		t.t.Stop()
		t.cancel(context.Canceled)
	}
}

// RetryStatus reports whether a response status is one the policy retries
// (then the upstream returns a *StatusError to ShouldRetry).
func (r *RetryPolicy) RetryStatus(status int) bool {
	return status >= 500 && status <= 599 && r.onStatus[status-500]
}

// ShouldRetry reports whether the request whose try number attempt (1 for
// the first) failed with err may be tried again on another backend. A
// *DialError or *RefusedError (the backend never started the request) is
// retried for any method; anything else (resets, timeouts, a *StatusError
// in retry.on_status) only for idempotent methods (RFC 9110 §9.2.2) without
// a body. A held body is retried only on the first kind; a lost body, a
// request the client cancelled and a failed Pick never are. A true answer
// spends the retry budget; a false one for lack of budget counts
// retry_budget_exhausted_total.
func (r *RetryPolicy) ShouldRetry(err error, method string, attempt int, body Body) bool {
	if err == nil || body == BodyLost || attempt > r.attempts || attempt < 1 {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrNoBackend) || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	var de *DialError
	var re *RefusedError
	var se *StatusError
	switch {
	case errors.As(err, &de), errors.As(err, &re):
		// The backend did no work for this try, so its retry adds none:
		// the budget guards backends against doing requests twice, and a
		// dead backend of a live pool (connects refused until health or
		// the backend comes back) must not spend it on every request.
		r.mRetries.Inc()
		return true
	case body == BodyHeld:
		return false // the backend may have processed it
	case errors.As(err, &se):
		if !r.RetryStatus(se.Status) || !idempotent(method) {
			return false
		}
	default:
		if !idempotent(method) {
			return false
		}
	}
	if !r.spend(time.Now().Unix()) {
		r.mExhausted.Inc()
		return false
	}
	r.mRetries.Inc()
	return true
}

// idempotent reports RFC 9110 §9.2.2's idempotent methods.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// spend takes one retry from the budget if there is one.
func (r *RetryPolicy) spend(sec int64) bool {
	var reqs uint64
	for _, b := range r.pool.backends {
		reqs += b.requests.Load()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	retries := r.retries.Load()
	n := int64(len(r.snaps))
	if s := &r.snaps[sec%n]; s.sec != sec {
		*s = budgetSnap{sec: sec, requests: reqs, retries: retries}
	}
	// The base is the oldest snapshot inside the window; a pool quiet for
	// longer than the window has none but the current one, and then the
	// newest older snapshot stands in, its counts scaled to the window.
	var base *budgetSnap
	var older *budgetSnap
	for i := range r.snaps {
		s := &r.snaps[i]
		if s.sec == 0 && s.requests == 0 && s.retries == 0 {
			continue
		}
		if sec-s.sec <= budgetWindow {
			if base == nil || s.sec < base.sec {
				base = s
			}
		} else if older == nil || s.sec > older.sec {
			older = s
		}
	}
	span := sec - base.sec
	dReq := reqs - base.requests
	dRetry := retries - base.retries
	if span == 0 && older != nil {
		span = sec - older.sec
		dReq = (reqs - older.requests) * budgetWindow / uint64(span)
		dRetry = (retries - older.retries) * budgetWindow / uint64(span)
		span = budgetWindow
	}
	span = max(span, 1)
	allowed := int64(dReq)*r.pct/100 + r.minPerSec*span
	if int64(dRetry)+1 > allowed {
		return false
	}
	r.retries.Add(1)
	return true
}
