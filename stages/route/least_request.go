package route

// leastRequest picks the backend with the fewest requests in progress
// (Begin..End) per unit of weight, scanning all backends; for large pools
// p2c gives nearly the same result in O(1).
type leastRequest struct{}

// Pick implements Picker.
func (leastRequest) Pick(p *Pool, k Key) *Backend {
	return leastLoaded(p, &k, func(b *Backend) int64 { return b.active.Load() })
}
