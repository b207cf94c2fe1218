package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// webCall is one grpc-web call made as a browser's grpc-web client makes
// it (the protocol's spec, no library): POST with the call's content-type,
// the length-prefixed messages as the body (base64 for -text), and the
// response read back into its messages and its trailers — from the
// trailer message at the end of the body, or from the headers of a
// trailers-only response.
type webCall struct {
	msgs     [][]byte
	trailers http.Header
	ctype    string
}

func grpcWebCall(t *testing.T, c *http.Client, url string, text bool, reqMsgs ...[]byte) webCall {
	t.Helper()
	var body []byte
	for _, m := range reqMsgs {
		body = append(body, m...)
	}
	ct := "application/grpc-web+proto"
	if text {
		ct = "application/grpc-web-text+proto"
		// Each message encoded on its own, padded: what grpc-web clients
		// send, and what the gateway must take.
		var enc []byte
		for _, m := range reqMsgs {
			enc = append(enc, base64.StdEncoding.EncodeToString(m)...)
		}
		body = enc
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("content-type", ct)
	req.Header.Set("x-grpc-web", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	out := webCall{ctype: resp.Header.Get("content-type"), trailers: http.Header{}}
	if text {
		// Padded chunks one after another: decode four characters at a
		// time.
		var dec []byte
		for i := 0; i+4 <= len(raw); i += 4 {
			b, err := base64.StdEncoding.DecodeString(string(raw[i : i+4]))
			if err != nil {
				t.Fatalf("response is not base64: %v", err)
			}
			dec = append(dec, b...)
		}
		raw = dec
	}
	for len(raw) >= 5 {
		n := int(binary.BigEndian.Uint32(raw[1:5]))
		if len(raw) < 5+n {
			t.Fatalf("a message of %d bytes cut at %d", n, len(raw)-5)
		}
		if raw[0]&0x80 != 0 {
			tp := textprotoHeader(t, raw[5:5+n])
			for k, v := range tp {
				out.trailers[k] = v
			}
		} else {
			out.msgs = append(out.msgs, raw[5:5+n])
		}
		raw = raw[5+n:]
	}
	if len(raw) != 0 {
		t.Fatalf("%d stray bytes after the last message", len(raw))
	}
	if len(out.trailers) == 0 {
		// Trailers-only: the status is in the headers.
		for _, k := range []string{"Grpc-Status", "Grpc-Message"} {
			if v := resp.Header.Get(k); v != "" {
				out.trailers.Set(k, v)
			}
		}
	}
	return out
}

func textprotoHeader(t *testing.T, b []byte) http.Header {
	t.Helper()
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimRight(sc.Text(), "\r"), ":")
		if !ok {
			t.Fatalf("trailer line %q", sc.Text())
		}
		if k != strings.ToLower(k) {
			t.Fatalf("trailer name %q is not lower-case", k)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h
}

// grpc-web on an HTTP/1.1 and an HTTP/2 front, binary and text: unary,
// server streaming, a backend's error status, and the gateway's own
// status for a call it cannot place, all to a grpc-go backend over h2c.
func TestGRPCWeb_UnaryStreamingAndStatuses(t *testing.T) {
	svc := &grpcSvc{}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "", be)
	fronts := map[string]*http.Client{"h1": client(t), "h2": h2cClient(t)}
	for name, c := range fronts {
		for _, text := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/text=%v", name, text), func(t *testing.T) {
				url := g.url("h2c") + "/grpc.testing.TestService/"
				r := grpcWebCall(t, c, url+"UnaryCall", text, grpcFrame(t, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello web")}}))
				var out testpb.SimpleResponse
				if len(r.msgs) != 1 || proto.Unmarshal(r.msgs[0], &out) != nil || string(out.GetPayload().GetBody()) != "hello web" {
					t.Fatalf("unary: %d messages", len(r.msgs))
				}
				if r.trailers.Get("grpc-status") != "0" {
					t.Fatalf("unary: trailers %v", r.trailers)
				}
				wantCT := "application/grpc-web+proto"
				if text {
					wantCT = "application/grpc-web-text+proto"
				}
				if r.ctype != wantCT {
					t.Fatalf("content-type %q, want %q", r.ctype, wantCT)
				}

				params := make([]*testpb.ResponseParameters, 100)
				for i := range params {
					params[i] = &testpb.ResponseParameters{Size: int32(1000 + i)}
				}
				r = grpcWebCall(t, c, url+"StreamingOutputCall", text, grpcFrame(t, &testpb.StreamingOutputCallRequest{ResponseParameters: params}))
				if len(r.msgs) != 100 || r.trailers.Get("grpc-status") != "0" {
					t.Fatalf("server stream: %d messages, trailers %v", len(r.msgs), r.trailers)
				}
				for i, m := range r.msgs {
					var sm testpb.StreamingOutputCallResponse
					if proto.Unmarshal(m, &sm) != nil || len(sm.GetPayload().GetBody()) != 1000+i {
						t.Fatalf("message %d malformed", i)
					}
				}
			})
		}
	}
	svc.unary = func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return nil, status.Error(codes.PermissionDenied, "not you")
	}
	r := grpcWebCall(t, client(t), g.url("h2c")+"/grpc.testing.TestService/UnaryCall", false, grpcFrame(t, &testpb.SimpleRequest{}))
	if r.trailers.Get("grpc-status") != "7" || r.trailers.Get("grpc-message") != "not you" {
		t.Fatalf("backend error: %v", r.trailers)
	}
	// A call the gateway cannot route is the gateway's own gRPC status.
	ng := startGateway(t, h1Listener("h2c", "[[listeners.routes]]\npath_prefix = \"/elsewhere\"\n[[listeners.routes.backends]]\naddress = \""+be+"\"\nprotocol = \"h2\""))
	r = grpcWebCall(t, client(t), ng.url("h2c")+"/grpc.testing.TestService/UnaryCall", true, grpcFrame(t, &testpb.SimpleRequest{}))
	if r.trailers.Get("grpc-status") != "12" {
		t.Fatalf("no route: %v, want UNIMPLEMENTED (12)", r.trailers)
	}
}

// A grpc-web-text body that is not base64 never reaches the backend as a
// complete call.
func TestGRPCWeb_BadTextBodyIsRefused(t *testing.T) {
	svc := &grpcSvc{}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "", be)
	reached := make(chan struct{}, 1)
	svc.unary = func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		reached <- struct{}{}
		return &testpb.SimpleResponse{}, nil
	}
	req, _ := http.NewRequest("POST", g.url("h2c")+"/grpc.testing.TestService/UnaryCall", strings.NewReader("!!!! not base64"))
	req.Header.Set("content-type", "application/grpc-web-text")
	resp, err := client(t).Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("grpc-status") == "0" {
			t.Fatal("a malformed body answered OK")
		}
	}
	select {
	case <-reached:
		t.Fatal("the backend served a call from a malformed body")
	default:
	}
}

// A real grpc-web client (protobuf-ts's fetch transport under Node.js, as
// web apps use it; installed by scripts/install-test-deps.sh) calls a
// grpc-go backend through the gateway's HTTP/1.1 front, binary and text:
// unary, a 50-message server stream, and a backend error with its code
// and message.
func TestGRPCWeb_RealClient(t *testing.T) {
	dir, err := filepath.Abs("testdata/grpcweb-node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(dir, "node_modules", "@protobuf-ts", "grpcweb-transport")); err != nil || serr != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") != "" {
			t.Fatalf("node and the client's packages are required (EG_REQUIRE_TOOLS is set): run scripts/install-test-deps.sh")
		}
		t.Skip("node or the grpc-web client's packages missing (scripts/install-test-deps.sh installs them)")
	}
	svc := &grpcSvc{}
	svc.unary = func(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if string(in.GetPayload().GetBody()) == "deny" {
			return nil, status.Error(codes.PermissionDenied, "not you")
		}
		return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
	}
	be, _ := grpcBackend(t, svc)
	g := grpcGateway(t, "", be)
	for _, format := range []string{"binary", "text"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "client.mjs", g.url("h2c"), format)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("client: %v\n%s", err, stderr.String())
			}
			var got struct {
				Unary, UnaryStatus, StreamStatus, Denied string
				StreamSizes                              []int
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("client output %q: %v", out, err)
			}
			if got.Unary != "hello web" || got.UnaryStatus != "OK" {
				t.Errorf("unary: %q, status %s", got.Unary, got.UnaryStatus)
			}
			if len(got.StreamSizes) != 50 || got.StreamStatus != "OK" {
				t.Fatalf("server stream: %d messages, status %s", len(got.StreamSizes), got.StreamStatus)
			}
			for i, n := range got.StreamSizes {
				if n != 100+i {
					t.Fatalf("message %d: %d bytes, want %d", i, n, 100+i)
				}
			}
			if got.Denied != "PERMISSION_DENIED: not you" {
				t.Errorf("backend error reached the client as %q", got.Denied)
			}
		})
	}
}
