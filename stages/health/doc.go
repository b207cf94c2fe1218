// Package health is the route stage's health policy: active probes (http,
// tcp, grpc) run by one checker goroutine per pool, and passive outlier
// detection fed by live outcomes (route.Observer). It drives the mechanism
// in stages/route (Pool.SetDown, TryEject, Uneject), exports expressgateway_backend_up,
// backend_health_transitions_total, backend_ejections_total and
// health_check_duration_seconds, and logs every
// transition.
//
//	c, err := health.New(pool, cfg, logger, health.Options{})
//	c.Start(ctx)
//	defer c.Stop() // waits for the checker and every probe
//
// It may import frames, bus, conf and bpf, and stages/route.
package health
