package pipeline

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/expressgateway/expressgateway/bus"
)

// grpcH3Hop is a gRPC server reached over HTTP/3: a second gateway whose
// quic listener fronts the grpc-go server be (there is no grpc-go server
// for HTTP/3). It returns the backends section that points there.
func grpcH3Hop(t *testing.T, be string) string {
	t.Helper()
	f := newH3Files(t)
	// The hop sees the front's client's authority under the SNI the front
	// verifies it by (localhost): that is no domain fronting.
	hop := startGateway(t, quicListener("q", f, "", "[[listeners.backends]]\naddress = \""+be+"\"\nprotocol = \"h2\"\n[listeners.http]\nallow_domain_fronting = true"))
	return "[[listeners.backends]]\naddress = \"" + hop.Addr("q").String() + "\"\nprotocol = \"h3\"\ntls_ca_path = \"" + f.cert + "\"\ntls_verify_hostname = \"localhost\""
}

// gRPC through an HTTP/3 backend hop: a unary call, every status code
// with its message and details (trailers-only over HTTP/3 and back), and
// the three streaming kinds.
func TestGRPC_ThroughAnH3Backend(t *testing.T) {
	svc := &grpcSvc{}
	be, _ := grpcBackend(t, svc)
	g := startGateway(t, h1Listener("h2c", grpcH3Hop(t, be)))
	c := testpb.NewTestServiceClient(grpcDial(t, g, "h2c"))
	resp, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("via h3")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "via h3" {
		t.Fatalf("unary: %v, %v", resp, err)
	}
	svc.unary = func(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		st, err := status.New(codes.Code(in.GetResponseSize()), "why: 100% ünïcode\n").WithDetails(&testpb.SimpleResponse{Username: "d"})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
		_, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{ResponseSize: int32(code)})
		st := status.Convert(err)
		if st.Code() != code || st.Message() != "why: 100% ünïcode\n" || len(st.Details()) != 1 {
			t.Errorf("%v: got %v %q %v", code, st.Code(), st.Message(), st.Details())
		}
	}
	svc.unary = nil
	const n = 2000
	grpcClientStream(t, c, n)
	grpcServerStream(t, c, n)
	grpcBidi(t, c, n)
}

// A 4 GiB server stream to a client that reads slowly at first streams
// with the bus budgets as the only buffer: the gateway's in-flight bytes
// stay bounded, whatever the stream's length.
func TestGRPC_4GiBServerStreamStaysWithinTheBusBudget(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("4 GiB through the gateway: the plain full suite runs it")
	}
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	c := testpb.NewTestServiceClient(grpcDial(t, g, "h2c"))
	const msg, n = 1 << 20, 4096 // 4 GiB in 1 MiB messages
	params := make([]*testpb.ResponseParameters, n)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: msg}
	}
	ss, err := c.StreamingOutputCall(grpcCtx(t), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	var total int64
	for i := 0; ; i++ {
		m, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
		total += int64(len(m.GetPayload().GetBody()))
		if u := globalBudget.Used(); u > peak {
			peak = u
		}
		if i < 40 {
			time.Sleep(5 * time.Millisecond) // slow at first: the links fill up
		}
	}
	if total != msg*n {
		t.Fatalf("received %d bytes, want %d", total, msg*n)
	}
	if limit := int64(4 * bus.DefaultStreamBytes); peak > limit {
		t.Fatalf("in-flight bus bytes peaked at %d, over %d", peak, limit)
	}
	t.Logf("4 GiB server stream; bus in-flight peak %d KiB", peak>>10)
}
