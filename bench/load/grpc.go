package load

import (
	"context"
	"fmt"
	"io"
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
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, size)}}
	var calls []func(context.Context) error
	for _, c := range clients {
		for range inflight {
			calls = append(calls, func(ctx context.Context) error {
				resp, err := c.UnaryCall(ctx, req)
				if err == nil && len(resp.GetPayload().GetBody()) != size {
					err = fmt.Errorf("echo of %d bytes", len(resp.GetPayload().GetBody()))
				}
				return err
			})
		}
	}
	r := closedLoop(ctx, dur, calls, false)
	if r.Requests == 0 {
		return r, fmt.Errorf("grpc %s: no call succeeded (%d errors)", addr, r.Errors)
	}
	return r, nil
}

// GRPCServerStream drives addr (h2c) with conns grpc-go connections, each
// with one StreamingOutputCall after another asking for msgs messages of
// size bytes, for dur. A message counts as a request (its latency is the
// gap since the previous one), so the result reads as messages/s.
func GRPCServerStream(ctx context.Context, addr string, conns, msgs, size int, dur time.Duration) (Result, error) {
	params := make([]*testpb.ResponseParameters, msgs)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: int32(size)}
	}
	req := &testpb.StreamingOutputCallRequest{ResponseParameters: params}
	var calls []func(context.Context) error
	for range conns {
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return Result{}, err
		}
		defer cc.Close()
		c := testpb.NewTestServiceClient(cc)
		// One call yields msgs messages: the loop's unit is a message,
		// read off the call open on this connection.
		var ss testpb.TestService_StreamingOutputCallClient
		calls = append(calls, func(ctx context.Context) error {
			if ss == nil {
				var err error
				if ss, err = c.StreamingOutputCall(ctx, req); err != nil {
					return err
				}
			}
			m, err := ss.Recv()
			if err == io.EOF {
				ss = nil
				return nil
			}
			if err == nil && len(m.GetPayload().GetBody()) != size {
				err = fmt.Errorf("message of %d bytes", len(m.GetPayload().GetBody()))
			}
			return err
		})
	}
	r := closedLoop(ctx, dur, calls, false)
	if r.Requests == 0 {
		return r, fmt.Errorf("grpc stream %s: no message came (%d errors)", addr, r.Errors)
	}
	return r, nil
}
