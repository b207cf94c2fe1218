package load

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// GRPCUnary drives addr (h2c) with grpc-go: conns client connections,
// each with inflight unary calls back to back carrying a size-byte
// payload, for dur. A call counts as a request.
func GRPCUnary(ctx context.Context, addr string, conns, inflight, size int, dur time.Duration) (Result, error) {
	clients := make([]testpb.TestServiceClient, 0, conns)
	for range conns {
		// Each client its own connection: grpc-go would share one.
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return Result{}, err
		}
		defer cc.Close()
		clients = append(clients, testpb.NewTestServiceClient(cc))
	}
	// Calls carry no deadline of the run's (grpc-go would send it as
	// grpc-timeout, and calls begun in the timer's lag after the end would
	// fail at once); the loop stops at end, and a call in flight then
	// finishes, bounded by callCtx.
	end := time.Now().Add(dur)
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dur+10*time.Second)
	defer cancel()
	var (
		ok, bad atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		wg      sync.WaitGroup
	)
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, size)}}
	start := time.Now()
	for _, c := range clients {
		for range inflight {
			wg.Go(func() {
				local := make([]time.Duration, 0, 1<<12)
				for time.Now().Before(end) && ctx.Err() == nil {
					t0 := time.Now()
					resp, err := c.UnaryCall(callCtx, req)
					if err != nil || len(resp.GetPayload().GetBody()) != size {
						bad.Add(1)
						continue
					}
					local = append(local, time.Since(t0))
					ok.Add(1)
				}
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	r := Result{Requests: ok.Load(), Errors: bad.Load(), Elapsed: time.Since(start)}
	if r.Requests == 0 {
		return r, fmt.Errorf("grpc %s: no call succeeded (%d errors)", addr, r.Errors)
	}
	r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	r.fromLatencies(lats)
	return r, nil
}
