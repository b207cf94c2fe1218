// Package load drives HTTP load for the bench command and reports what
// each run achieved: wrk for HTTP/1.1, h2load for HTTP/2, an in-process
// quic-go client for HTTP/3 (neither tool speaks it), and idle keep-alive
// connections for memory. Every run is bounded by a duration and a context.
package load

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one load run achieved.
type Result struct {
	Requests int64         // requests answered 2xx/3xx
	Errors   int64         // failed, errored or non-2xx/3xx requests
	Elapsed  time.Duration // wall time of the measured part
	RPS      float64       // Requests per second of Elapsed
	P50, P99 time.Duration
}

// percentile returns the q-quantile of sorted latencies, 0 if none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// fromLatencies fills P50 and P99 from unsorted latencies.
func (r *Result) fromLatencies(lats []time.Duration) {
	slices.Sort(lats)
	r.P50, r.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
}

// seconds rounds d up to whole seconds, at least one: wrk and h2load take
// integral durations.
func seconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// closedLoop runs one goroutine per call, each calling it back to back
// until dur has passed or ctx ends, and returns what they did: a nil
// return counts as a request with its latency, an error as an error (and
// with stopOnError ends that goroutine: a broken tunnel stays broken).
// Calls run under a context without the run's deadline (a client would
// send it on, as grpc-timeout, and calls begun while the deadline's timer
// lags would fail at once); a call in flight at the end finishes, bounded
// by dur plus callGrace.
func closedLoop(ctx context.Context, dur time.Duration, calls []func(context.Context) error, stopOnError bool) Result {
	end := time.Now().Add(dur)
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dur+callGrace)
	defer cancel()
	var (
		ok, bad atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	for _, call := range calls {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<12)
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				if err := call(callCtx); err != nil {
					bad.Add(1)
					if stopOnError {
						break
					}
					continue
				}
				local = append(local, time.Since(t0))
				ok.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := Result{Requests: ok.Load(), Errors: bad.Load(), Elapsed: time.Since(start)}
	if r.Requests > 0 {
		r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
		r.fromLatencies(lats)
	}
	return r
}

// callGrace bounds how long a call in flight at the end of a run may take
// to finish.
const callGrace = 10 * time.Second
