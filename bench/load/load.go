// Package load drives HTTP load for the bench command and reports what
// each run achieved: wrk for HTTP/1.1, h2load for HTTP/2, an in-process
// quic-go client for HTTP/3 (neither tool speaks it), and idle keep-alive
// connections for memory. Every run is bounded by a duration and a context.
package load

import (
	"slices"
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
