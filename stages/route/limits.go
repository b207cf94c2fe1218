package route

// Limits and constants of selection.
const (
	// weightScale is the fixed-point unit of an effective weight: a backend
	// of configured weight w has effective weight w*weightScale, less while
	// it slow-starts.
	weightScale = 1000

	// slowStartMinScale is the share of its weight a backend gets at the
	// start of slow start (Envoy's min_weight_percent default, 10%).
	slowStartMinScale = weightScale / 10

	// maxSchedule bounds the smooth round-robin schedule (entries); larger
	// weight sums are scaled down to fit.
	maxSchedule = 1 << 16

	// ringPointsPerWeight is how many ring_hash points a backend gets per
	// unit of weight; more points give a fairer split (relative spread of
	// a share ≈ 1/sqrt(points)). maxRingSize bounds the ring (points).
	ringPointsPerWeight = 256
	maxRingSize         = 1 << 20

	// ewmaDecayNanos is the peak-EWMA time constant (Finagle's 10 s).
	ewmaDecayNanos = 10e9

	// pickBeginTries bounds PickBegin's re-picks when concurrent requests
	// take a backend's last max_requests place between Pick and Begin.
	pickBeginTries = 3

	// budgetWindow is the retry budget's window in seconds (Linkerd's ttl).
	budgetWindow = 10
)
