package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcSvc is the backend: grpc-go's interop TestService, each method a
// behaviour a test asks for.
type grpcSvc struct {
	testpb.UnimplementedTestServiceServer
	// unary, when set, answers UnaryCall.
	unary func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
	// canceled is closed when a FullDuplexCall's context ends without
	// the client half-closing.
	canceled chan struct{}
	// streamed is signalled after each message a server stream sends.
	streamed chan int
}

func (s *grpcSvc) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.unary != nil {
		return s.unary(ctx, in)
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload(), Username: "echo"}, nil
}

func (s *grpcSvc) StreamingInputCall(st testpb.TestService_StreamingInputCallServer) error {
	n := 0
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
		}
		if err != nil {
			return err
		}
		n += len(m.GetPayload().GetBody())
	}
}

func (s *grpcSvc) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, st testpb.TestService_StreamingOutputCallServer) error {
	for i, p := range in.GetResponseParameters() {
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
		if s.streamed != nil {
			select {
			case s.streamed <- i:
			case <-st.Context().Done():
				return st.Context().Err()
			}
		}
	}
	return nil
}

func (s *grpcSvc) FullDuplexCall(st testpb.TestService_FullDuplexCallServer) error {
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if s.canceled != nil && st.Context().Err() != nil {
				close(s.canceled)
			}
			return err
		}
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

// grpcBackend serves svc with grpc-go over h2c on loopback; the server
// is returned so a test can kill it.
func grpcBackend(t *testing.T, svc *grpcSvc) (string, *grpc.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, svc)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ln.Addr().String(), srv
}

// grpcGateway starts an h2c listener ("h2c") and a TLS one ("tls", ALPN
// h2) in front of the backends, with extra under each listener (a
// [listeners.grpc] block, say).
func grpcGateway(t *testing.T, extra string, backends ...string) *testGateway {
	t.Helper()
	var bs strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&bs, "[[listeners.backends]]\naddress = %q\nprotocol = \"h2\"\n", b)
	}
	cert, key := writeCert(t, t.TempDir(), "localhost")
	return startGateway(t, h1Listener("h2c", extra+"\n"+bs.String())+`
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
`+extra+"\n"+bs.String())
}

// grpcFronts are the fronts a call can take: h2c and TLS.
var grpcFronts = []string{"h2c", "tls"}

// grpcDial is a stock grpc-go client of the gateway's named front.
func grpcDial(t *testing.T, g *testGateway, front string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if front == "tls" {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	}
	cc, err := grpc.NewClient("passthrough:///"+g.Addr(front).String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func grpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPC_Unary(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	for _, front := range grpcFronts {
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		resp, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}})
		if err != nil || string(resp.GetPayload().GetBody()) != "hello" || resp.GetUsername() != "echo" {
			t.Fatalf("%s: %v, %v", front, resp, err)
		}
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	if want := `expressgateway_grpc_calls_total{listener="h2c",service="grpc.testing.TestService",method="UnaryCall",grpc_status="0"}`; !strings.Contains(buf.String(), want) {
		t.Errorf("no %s in /metrics", want)
	}
}

// Every status a backend returns arrives as it was sent: code, message
// (percent-encoded on the wire) and details. grpc-go sends these
// trailers-only, so this waits on the HTTP/2 trailers-only relay.
func TestGRPC_StatusCodesPassUnchanged(t *testing.T) {
	svc := &grpcSvc{}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "", be)
	svc.unary = func(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		st, err := status.New(codes.Code(in.GetResponseSize()), "why: 100% ünïcode\n").WithDetails(&testpb.SimpleResponse{Username: string(in.GetPayload().GetBody())})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	for _, front := range grpcFronts {
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
			t.Run(front+"/"+code.String(), func(t *testing.T) {
				_, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{ResponseSize: int32(code), Payload: &testpb.Payload{Body: []byte("d" + code.String())}})
				st := status.Convert(err)
				if st.Code() != code || st.Message() != "why: 100% ünïcode\n" {
					t.Fatalf("got %v %q, want %v", st.Code(), st.Message(), code)
				}
				ds := st.Details()
				if len(ds) != 1 || ds[0].(*testpb.SimpleResponse).GetUsername() != "d"+code.String() {
					t.Fatalf("details %v", ds)
				}
			})
		}
	}
}

func TestGRPC_Streaming10000(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	const n = 10000
	for _, front := range grpcFronts {
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		t.Run(front+"/client", func(t *testing.T) { grpcClientStream(t, c, n) })
		t.Run(front+"/server", func(t *testing.T) { grpcServerStream(t, c, n) })
		t.Run(front+"/bidi", func(t *testing.T) { grpcBidi(t, c, n) })
	}
}

// grpcClientStream sends n 10-byte messages on one StreamingInputCall and
// wants their total back.
func grpcClientStream(t *testing.T, c testpb.TestServiceClient, n int) {
	t.Helper()
	cs, err := c.StreamingInputCall(grpcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("0123456789")}}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cs.CloseAndRecv()
	if err != nil || resp.GetAggregatedPayloadSize() != int32(10*n) {
		t.Fatalf("client stream: %v, %v", resp, err)
	}
}

// grpcServerStream asks one StreamingOutputCall for n 10-byte messages
// and wants them all, then the end.
func grpcServerStream(t *testing.T, c testpb.TestServiceClient, n int) {
	t.Helper()
	params := make([]*testpb.ResponseParameters, n)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: 10}
	}
	ss, err := c.StreamingOutputCall(grpcCtx(t), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		m, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("server stream after %d: %v", got, err)
		}
		if len(m.GetPayload().GetBody()) != 10 {
			t.Fatalf("message %d: %d bytes", got, len(m.GetPayload().GetBody()))
		}
		got++
	}
	if got != n {
		t.Fatalf("server stream: %d messages, want %d", got, n)
	}
}

// grpcBidi runs n ping-pong round trips on one FullDuplexCall.
func grpcBidi(t *testing.T, c testpb.TestServiceClient, n int) {
	t.Helper()
	bs, err := c.FullDuplexCall(grpcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := []byte(fmt.Sprint(i))
		if err := bs.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: body}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		m, err := bs.Recv()
		if err != nil || !bytes.Equal(m.GetPayload().GetBody(), body) {
			t.Fatalf("round trip %d: %v, %v", i, m, err)
		}
	}
	bs.CloseSend()
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

// grpc-go's BDP estimator pings with each burst of DATA it receives: a
// long bidi stream from a stock client with default options is useful
// work, not a control-frame flood, and runs to its end.
func TestGRPC_BidiStream100000PassesTheFloodGuard(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	grpcBidi(t, testpb.NewTestServiceClient(grpcDial(t, g, "h2c")), 100000)
}

// A deadline longer than max_deadline_seconds is clamped: the backend
// sees the clamped grpc-timeout, and the gateway ends the call with
// DEADLINE_EXCEEDED when it passes, though the client would wait an hour.
func TestGRPC_DeadlineClampedForwardedAndEnforced(t *testing.T) {
	left := make(chan time.Duration, 4)
	svc := &grpcSvc{unary: func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Hour)
		}
		left <- time.Until(dl)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "[listeners.grpc]\nmax_deadline_seconds = 1", be)
	for _, front := range grpcFronts {
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		cancel()
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "expressgateway") {
			t.Fatalf("%s: %v", front, err)
		}
		if d := <-left; d > time.Second {
			t.Fatalf("%s: the backend got %v to answer, more than the 1 s clamp", front, d)
		}
	}
}

// A malformed grpc-timeout is INTERNAL, answered trailers-only by the
// gateway: HTTP 200, application/grpc, grpc-status in the head.
func TestGRPC_MalformedTimeoutIsInternal(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	req, _ := http.NewRequest("POST", g.url("h2c")+"/grpc.testing.TestService/UnaryCall", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	req.Header.Set("grpc-timeout", "1x")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/grpc" || resp.Header.Get("grpc-status") != "13" ||
		!strings.Contains(resp.Header.Get("grpc-message"), "grpc-timeout") || len(body) != 0 {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// A client's cancel reaches the backend as a cancel: its stream's
// context ends.
func TestGRPC_ClientCancelReachesTheBackend(t *testing.T) {
	for _, front := range grpcFronts {
		svc := &grpcSvc{canceled: make(chan struct{})}
		be, _ := grpcBackend(t, svc)
		g := grpcGateway(t, "", be)
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		ctx, cancel := context.WithCancel(grpcCtx(t))
		bs, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bs.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}})
		if _, err := bs.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-svc.canceled:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the backend's stream was not canceled", front)
		}
	}
}

// A backend that dies mid-stream: the client reads UNAVAILABLE, not
// INTERNAL or a clean end.
func TestGRPC_BackendKilledMidStreamIsUnavailable(t *testing.T) {
	for _, front := range grpcFronts {
		svc := &grpcSvc{streamed: make(chan int, 1)}
		be, srv := grpcBackend(t, svc)
		g := grpcGateway(t, "", be)
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		params := make([]*testpb.ResponseParameters, 1000)
		for i := range params {
			params[i] = &testpb.ResponseParameters{Size: 10}
		}
		ss, err := c.StreamingOutputCall(grpcCtx(t), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Recv(); err != nil {
			t.Fatal(err)
		}
		<-svc.streamed // the handler is blocked on its next report
		srv.Stop()     // its context ends, so it returns
		for {
			_, err = ss.Recv()
			if err != nil {
				break
			}
		}
		if st := status.Convert(err); st.Code() != codes.Unavailable {
			t.Fatalf("%s: %v", front, err)
		}
	}
}

// With no backend to take it, a call is UNAVAILABLE from the gateway
// (trailers-only, with a message saying what it saw), not a text 502.
func TestGRPC_NoBackendIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	g := grpcGateway(t, "", dead)
	for _, front := range grpcFronts {
		_, err := testpb.NewTestServiceClient(grpcDial(t, g, front)).UnaryCall(grpcCtx(t), &testpb.SimpleRequest{})
		if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "expressgateway: 502") {
			t.Fatalf("%s: %v", front, err)
		}
	}
}

// health_synthesized answers grpc.health.v1 Check at the gateway from the
// pool's health: the backend here serves no health service at all.
func TestGRPC_HealthAnsweredLocally(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "[listeners.grpc]\nhealth_synthesized = true", be)
	for _, front := range grpcFronts {
		h := healthpb.NewHealthClient(grpcDial(t, g, front))
		resp, err := h.Check(grpcCtx(t), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: %v, %v", front, resp, err)
		}
		_, err = h.Check(grpcCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Route"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("%s: unknown service: %v", front, err)
		}
		w, err := h.Watch(grpcCtx(t), &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("%s: watch: %v", front, err)
		}
	}
	// Without the key, the call goes to the backend (which has no health
	// service).
	g2 := grpcGateway(t, "", be)
	_, err := healthpb.NewHealthClient(grpcDial(t, g2, "h2c")).Check(grpcCtx(t), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("without health_synthesized: %v", err)
	}
}

// Over HTTP/1.1 a gRPC call is refused with 415 and a body saying why.
func TestGRPC_H1Front415(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "", be)
	for _, ct := range []string{"application/grpc", "application/grpc+proto"} {
		resp, err := client(t).Post(g.url("h2c")+"/grpc.testing.TestService/UnaryCall", ct, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(body), "HTTP/2") {
			t.Fatalf("%s: %d %q", ct, resp.StatusCode, body)
		}
	}
}

// max_message_bytes: a message over it, either way, is RESOURCE_EXHAUSTED;
// under it passes.
func TestGRPC_MaxMessageBytes(t *testing.T) {
	var big atomic.Int32
	svc := &grpcSvc{unary: func(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, big.Load())}}, nil
	}}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "[listeners.grpc]\nmax_message_bytes = 4096", be)
	for _, front := range grpcFronts {
		c := testpb.NewTestServiceClient(grpcDial(t, g, front))
		big.Store(100)
		if _, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 100)}}); err != nil {
			t.Fatalf("%s: small: %v", front, err)
		}
		_, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 5000)}})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%s: request over the cap: %v", front, err)
		}
		big.Store(5000)
		_, err = c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%s: response over the cap: %v", front, err)
		}
	}
}

// [listeners.grpc] is live: a SIGHUP that sets max_message_bytes caps the
// next call on the same client connection.
func TestGRPC_ReloadAppliesTheGRPCBlock(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	mk := func(extra string) string {
		return h1Listener("h2c", extra+"\n[[listeners.backends]]\naddress = \""+be+"\"\nprotocol = \"h2\"\n")
	}
	g := startGateway(t, mk(""))
	c := testpb.NewTestServiceClient(grpcDial(t, g, "h2c"))
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 5000)}}
	if _, err := c.UnaryCall(grpcCtx(t), req); err != nil {
		t.Fatalf("before: %v", err)
	}
	reloadTo(t, g, mk("[listeners.grpc]\nmax_message_bytes = 4096"))
	if _, err := c.UnaryCall(grpcCtx(t), req); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("after the reload: %v", err)
	}
}

// enabled = false turns the gRPC rules off: a call over HTTP/1.1 is
// proxied as any request, not refused with 415.
func TestGRPC_DisabledProxiesAsHTTP(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	g := grpcGateway(t, "[listeners.grpc]\nenabled = false", be)
	resp, err := client(t).Post(g.url("h2c")+"/grpc.testing.TestService/UnaryCall", "application/grpc", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnsupportedMediaType {
		t.Fatal("415 with the gRPC rules off")
	}
}

// grpcFrame is one length-prefixed message.
func grpcFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0, byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
}

// h3Call makes one unary call over quic-go's HTTP/3 client, the messages
// framed by hand (grpc-go has no HTTP/3 client): it returns the response
// messages' bytes and the grpc-status, from the trailers or, for a
// trailers-only response, the head.
func h3Call(t *testing.T, c *http.Client, url string, msg []byte) (body []byte, grpcStatus, grpcMessage string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(msg))
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/grpc" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if s := resp.Header.Get("grpc-status"); s != "" {
		return body, s, resp.Header.Get("grpc-message")
	}
	return body, resp.Trailer.Get("grpc-status"), resp.Trailer.Get("grpc-message")
}

// Over an HTTP/3 front: a unary call to an H2 backend, the gateway's own
// UNAVAILABLE, and the local health answer.
func TestGRPC_H3Front(t *testing.T) {
	be, _ := grpcBackend(t, &grpcSvc{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	f := newH3Files(t)
	g := startGateway(t, quicListener("q", f, "", `
[listeners.grpc]
health_synthesized = true
[[listeners.routes]]
name = "live"
path_prefix = "/grpc."
[[listeners.routes.backends]]
address = "`+be+`"
protocol = "h2"
[[listeners.routes]]
name = "dead"
path_prefix = "/dead."
[[listeners.routes.backends]]
address = "`+dead+`"
protocol = "h2"
`))
	c, _ := h3Client(t, f.cert)
	body, st, _ := h3Call(t, c, g.h3URL("q")+"/grpc.testing.TestService/UnaryCall",
		grpcFrame(t, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("over h3")}}))
	var out testpb.SimpleResponse
	if st != "0" || len(body) < 5 || proto.Unmarshal(body[5:], &out) != nil || string(out.GetPayload().GetBody()) != "over h3" {
		t.Fatalf("unary: status %q, body %q", st, body)
	}
	if _, st, msg := h3Call(t, c, g.h3URL("q")+"/dead.Svc/M", grpcFrame(t, &testpb.SimpleRequest{})); st != "14" || !strings.Contains(msg, "expressgateway") {
		t.Fatalf("no backend: %q %q", st, msg)
	}
	body, st, _ = h3Call(t, c, g.h3URL("q")+healthCheck, grpcFrame(t, &healthpb.HealthCheckRequest{}))
	var hr healthpb.HealthCheckResponse
	if st != "0" || len(body) < 5 || proto.Unmarshal(body[5:], &hr) != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %q %q", st, body)
	}
	// With its only backend down, the named route's pool is NOT_SERVING,
	// and a call to it (tried anyway: the pool is in panic mode) is
	// UNAVAILABLE.
	pool := g.listeners[0].proxy.Table.Load().Named("dead").Pool
	pool.SetDown(pool.Backends()[0], true)
	body, st, _ = h3Call(t, c, g.h3URL("q")+healthCheck, grpcFrame(t, &healthpb.HealthCheckRequest{Service: "dead"}))
	if st != "0" || len(body) < 5 || proto.Unmarshal(body[5:], &hr) != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health of the named route: %q %q", st, body)
	}
	if _, st, msg := h3Call(t, c, g.h3URL("q")+"/dead.Svc/M", grpcFrame(t, &testpb.SimpleRequest{})); st != "14" || !strings.Contains(msg, "expressgateway: 50") {
		t.Fatalf("no healthy backend: %q %q", st, msg)
	}
}

// Method names come from clients: past maxGRPCMethods, and for names no
// label can hold, calls are counted under service="other", method="other".
func TestGRPC_MethodLabelsAreCapped(t *testing.T) {
	var m grpcMethods
	for i := range maxGRPCMethods + 10 {
		m.observe("capped", &grpcCall{service: "svc", method: fmt.Sprint("M", i), status: "0"}, time.Millisecond)
	}
	m.observe("capped", &grpcCall{service: `bad"name`, method: "M0", status: "0"}, time.Millisecond)
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	n := strings.Count(buf.String(), `expressgateway_grpc_calls_total{listener="capped",`)
	if n != maxGRPCMethods+1 {
		t.Fatalf("%d series, want %d and one other", n, maxGRPCMethods)
	}
	if want := `expressgateway_grpc_calls_total{listener="capped",service="other",method="other",grpc_status="0"} 11`; !strings.Contains(buf.String(), want) {
		t.Fatalf("no %s", want)
	}
}

// A call is not bounded by the total timeout (which bounds other
// requests until their head): a stream whose backend answers after it
// passed still runs.
func TestGRPC_TotalTimeoutDoesNotCutACall(t *testing.T) {
	release := make(chan struct{})
	svc := &grpcSvc{unary: func(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &testpb.SimpleResponse{Username: "late"}, nil
	}}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "[listeners.http]\ntotal_timeout_ms = 50", be)
	done := make(chan error, 1)
	go func() {
		_, err := testpb.NewTestServiceClient(grpcDial(t, g, "h2c")).UnaryCall(grpcCtx(t), &testpb.SimpleRequest{})
		done <- err
	}()
	// Wait well past the total timeout; a cut call would end here.
	select {
	case err := <-done:
		t.Fatalf("the call ended before the backend answered: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The access log line of a gRPC call carries the grpc-status the client
// got: an error sent trailers-only is logged with its code beside the
// HTTP 200.
func TestGRPC_AccessLogCarriesGRPCStatus(t *testing.T) {
	svc := &grpcSvc{}
	be, _ := grpcBackend(t, svc)
	svc.unary = func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return nil, status.Error(codes.NotFound, "no such thing")
	}
	path := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, `
[observability]
access_log_path = "`+path+`"
`+h1Listener("h2c", fmt.Sprintf("[[listeners.backends]]\naddress = %q\nprotocol = \"h2\"\n", be)))
	c := testpb.NewTestServiceClient(grpcDial(t, g, "h2c"))
	if _, err := c.UnaryCall(grpcCtx(t), &testpb.SimpleRequest{}); status.Code(err) != codes.NotFound {
		t.Fatalf("call: %v, want NotFound", err)
	}
	lines := waitLines(t, g, path, 1)
	if len(lines) != 1 || !strings.Contains(lines[0], `"status":200`) || !strings.Contains(lines[0], `"grpc_status":"5"`) {
		t.Fatalf("access log %q: want status 200 with grpc_status 5", lines)
	}
}
