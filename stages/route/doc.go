// Package route is the route stage's backend selection: pools of backends,
// one Picker per balancing algorithm (one file each), per-backend runtime
// state in atomics (active requests, connections, health, ejection, EWMA
// latency, slow start), circuit breakers and the retry policy with its
// budget.
//
// The request path is four calls:
//
//	b, err := pool.Pick(route.Key{Src: ip, Head: head}) // ErrNoBackend, ErrCircuitOpen → 503
//	a := b.Begin()
//	... exchange with b ...
//	a.End(route.Outcome{Status: st, Err: err})
//	if pool.Retry().ShouldRetry(err, method, attempt, replayable) { pick again }
//
// Health (active probes, outlier detection) is policy and lives in
// stages/health; this package holds the mechanism it drives (SetDown,
// TryEject, Uneject) and the one predicate every picker honours,
// Backend.Available.
//
// It may import frames, bus, conf and bpf (DESIGN §2).
package route
