package main

import (
	"context"
	"errors"
	"time"

	"github.com/expressgateway/expressgateway/bench/load"
)

// scenario is one row of the headline table.
type scenario struct {
	key   string // -scenarios name
	title string // row heading
	// front picks the address the load goes to ("" if the target lacks it).
	front func(*served) string
	// drive runs the load against addr for dur.
	drive func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error)
}

var errNoTool = errors.New("load tool not installed")

func wrk(path string, conns int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		if e.wrk == "" {
			return load.Result{}, errNoTool
		}
		return load.Wrk(ctx, e.wrk, "http://"+addr+path, 1, conns, dur)
	}
}

func h2load(path string, conns, streams int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		if e.h2load == "" {
			return load.Result{}, errNoTool
		}
		return load.H2load(ctx, e.h2load, e.dir, "https://"+addr+path, 1, conns, streams, dur)
	}
}

func h3(path string, conns, streams int) func(context.Context, *env, string, time.Duration) (load.Result, error) {
	return func(ctx context.Context, e *env, addr string, dur time.Duration) (load.Result, error) {
		return load.H3(ctx, "https://"+addr+path, e.certs.client, conns, streams, dur)
	}
}

func h1Front(s *served) string  { return s.h1 }
func tlsFront(s *served) string { return s.tls }
func h3Front(s *served) string  { return s.h3 }

// scenarios are the headline rows, every backend HTTP/1.1.
var scenarios = []scenario{
	{"h1-small", "H1→H1, 100 B GET, `wrk -t1 -c64`", h1Front, wrk(smallPath, 64)},
	{"h2-small", "H2 (TLS)→H1, 100 B GET, `h2load -t1 -c16 -m16`", tlsFront, h2load(smallPath, 16, 16)},
	{"h3-small", "H3→H1, 100 B GET, quic-go client 16 conns × 16 streams", h3Front, h3(smallPath, 16, 16)},
	{"h1-1mib", "H1→H1, 1 MiB GET, `wrk -t1 -c16`", h1Front, wrk(largePath, 16)},
	{"h2-1mib", "H2 (TLS)→H1, 1 MiB GET, `h2load -t1 -c4 -m4`", tlsFront, h2load(largePath, 4, 4)},
}

// idleScenario is the memory scenario's -scenarios name.
const idleScenario = "idle"
