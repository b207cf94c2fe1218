// Package route is the route stage's backend selection: pools of backends,
// one Picker per balancing algorithm (one file each), per-backend runtime
// state in atomics (active requests, connections, health, ejection, EWMA
// latency, slow start), circuit breakers and the retry policy with its
// budget.
//
// The request path is a few calls:
//
//	k := route.Key{Src: ip, Head: head}
//	b, a, err := pool.PickBegin(k) // ErrNoBackend, ErrCircuitOpen → 503
//	k.Exclude(b)                   // a retry prefers another backend
//	ctx, tt := pool.Retry().TryContext(ctx) // per-try timeout → ErrTryTimeout
//	... exchange with b; tt.Stop() once the head arrived ...
//	a.End(route.Outcome{Status: st, Err: err})
//	if pool.Retry().ShouldRetry(err, method, attempt, body) { pick again }
//
// L4 relays use Pick and Begin (a connection is the request there).
// The retry budget is Finagle's and Linkerd's: retries may be at most
// budget_percent of the pool's tries over 10 s plus min_retries_per_sec,
// so a failing pool sees at most about 1.25× its load.
//
// Health (active probes, outlier detection) is policy and lives in
// stages/health; this package holds the mechanism it drives (SetDown,
// TryEject, Uneject) and the one predicate every picker honours,
// Backend.Available.
//
// It may import frames, bus, conf and bpf.
package route
