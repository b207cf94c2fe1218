package route

// leastConn picks the backend with the fewest open connections per unit of
// weight (nginx's and HAProxy's leastconn). Connections are what the
// upstream reports through ConnOpen/ConnClosed; L4 proxies, where a
// connection is the unit of work, want this one.
type leastConn struct{}

// Pick implements Picker.
func (leastConn) Pick(p *Pool, k Key) *Backend {
	return leastLoaded(p, &k, func(b *Backend) int64 { return b.Conns() })
}
