package pipeline

import (
	"encoding/json"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// backendConns keeps each backend's upstream state (its TLS client config
// and connection pools) across reloads: a backend that a reload keeps, in
// the same pool with the same settings, keeps its warm connections, and the
// new pool settings (upstream_idle_timeout_ms, upstream_max_age_ms,
// upstream_max_idle_per_backend) apply to them from the next request on.
type backendConns struct {
	prev, next map[string]*upstream.BackendOpts
}

func newBackendConns(prev *backendConns) *backendConns {
	bc := &backendConns{next: map[string]*upstream.BackendOpts{}}
	if prev != nil {
		bc.prev = prev.next
	}
	return bc
}

// get returns the upstream state of backend b of pool, the previous one
// when it is unchanged.
func (bc *backendConns) get(pool string, b conf.Backend) (*upstream.BackendOpts, error) {
	b.Weight = 0 // a weight change keeps the connections
	k, _ := json.Marshal(struct {
		Pool    string
		Backend conf.Backend
	}{pool, b})
	key := string(k)
	if o := bc.next[key]; o != nil {
		return o, nil
	}
	if o := bc.prev[key]; o != nil {
		bc.next[key] = o
		return o, nil
	}
	// QUIC is always TLS, verified by default, whether or not the backend
	// says tls.
	tlsFor := upstream.BackendTLS
	if b.Protocol == "h3" || b.Protocol == "quic" {
		tlsFor = upstream.H3TLS
	}
	tc, err := tlsFor(b)
	if err != nil {
		return nil, err
	}
	o := upstream.NewBackendOpts(tc)
	bc.next[key] = o
	return o, nil
}

// closeDropped closes the idle connections of the backends the new set
// no longer has (those in flight finish and are then closed).
func (bc *backendConns) closeDropped() {
	for k, o := range bc.prev {
		if bc.next[k] == nil {
			o.CloseIdle()
		}
	}
}

// closeTransports closes every upstream transport's backend connections
// once no client connection is left to use them.
func (g *Gateway) closeTransports() {
	for _, tr := range g.transports {
		switch t := tr.(type) {
		case *upstream.H2:
			t.Close()
		case *upstream.H3:
			t.Close()
		}
	}
}
