package pipeline

import (
	"context"
	"fmt"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/health"
	"github.com/expressgateway/expressgateway/stages/route"
)

// newCheckers builds one health checker (active checks and outlier
// detection) per named pool. Pools without either section get a checker
// that does nothing.
func (g *Gateway) newCheckers(cfg *conf.Config, pools map[string]*route.Pool) ([]*health.Checker, error) {
	var out []*health.Checker
	for _, pc := range cfg.Pools {
		// The checker probes the pool's backends as built: a DNS-named
		// entry's addresses, not the name.
		pc, err := g.dns.expand(context.Background(), pc)
		if err != nil {
			stopCheckers(out)
			return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
		}
		c, err := health.New(pools[pc.Name], pc, g.log, health.Options{})
		if err != nil {
			for _, o := range out {
				o.Stop()
			}
			return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func startCheckers(ctx context.Context, cs []*health.Checker) {
	for _, c := range cs {
		c.Start(ctx)
	}
}

func stopCheckers(cs []*health.Checker) {
	for _, c := range cs {
		c.Stop()
	}
}
