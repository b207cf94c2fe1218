package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
)

// grpcSettings are a listener's [listeners.grpc] rules; nil in
// ProxySettings when gRPC-aware proxying is off.
type grpcSettings struct {
	MaxDeadline time.Duration
	Health      bool
	MaxMessage  uint32 // 0: no cap
}

// grpcSettingsFor builds the rules of a listener; a listener without the
// block gets the defaults, with health left to the backends.
func grpcSettingsFor(g *conf.GRPC) *grpcSettings {
	if g == nil {
		return &grpcSettings{MaxDeadline: conf.DefaultGRPCMaxDeadlineS * time.Second}
	}
	if g.Enabled != nil && !*g.Enabled {
		return nil
	}
	return &grpcSettings{
		MaxDeadline: time.Duration(g.MaxDeadlineSeconds) * time.Second,
		Health:      g.HealthSynthesized != nil && *g.HealthSynthesized,
		MaxMessage:  uint32(g.MaxMessageBytes),
	}
}

var (
	errGRPCOverH1      = errors.New("gRPC needs HTTP/2 or HTTP/3; this listener received the call over HTTP/1.1")
	errGRPCDeadline    = errors.New("the call's deadline (grpc-timeout, clamped to max_deadline_seconds) passed at the gateway")
	errGRPCTimeout     = errors.New("malformed grpc-timeout")
	errMessageTooLarge = errors.New("gRPC message over max_message_bytes")
	errBackendLost     = errors.New("the backend's stream failed mid-call")
)

// grpcCall is what the stream actor knows of a gRPC call.
type grpcCall struct {
	service, method string    // from the path /service/method
	status          string    // grpc-status the client got ("" while unknown)
	deadline        time.Time // the call's clamped deadline (zero: none)
}

// expired reports whether the call's deadline has passed: whatever ended
// the call then (the gateway's timer, or the backend's own deadline firing
// a moment before it, as the backend's clock started later), the client
// is owed DEADLINE_EXCEEDED.
func (c *grpcCall) expired() bool {
	return !c.deadline.IsZero() && !time.Now().Before(c.deadline)
}

// newGRPCCall returns the call a request is, or nil.
func newGRPCCall(req *frames.Head, set *grpcSettings) *grpcCall {
	if set == nil || !grpc.IsCall(req.Fields.Value("content-type")) {
		return nil
	}
	c := &grpcCall{}
	svc, m, ok := strings.Cut(strings.TrimPrefix(req.Path, "/"), "/")
	if ok {
		c.service, c.method = svc, m
	}
	return c
}

// observe notes the grpc-status a head or trailer block carries.
func (c *grpcCall) observe(fs frames.Fields) {
	if v, ok := fs.Get("grpc-status"); ok {
		c.status = v
	}
}

// deadline parses, clamps and rewrites the call's grpc-timeout: the
// backend gets the clamped value, and the gateway enforces it. 0 means
// the call has none (it is bounded by the idle limits only).
func grpcDeadline(req *frames.Head, max time.Duration) (time.Duration, error) {
	v, ok := req.Fields.Get("grpc-timeout")
	if !ok {
		return 0, nil
	}
	d, err := grpc.ParseTimeout(v)
	if err != nil {
		return 0, fmt.Errorf("%w %q", errGRPCTimeout, v)
	}
	if d > max {
		d = max
		req.Fields.Set("grpc-timeout", grpc.FormatTimeout(d))
	}
	if d == 0 {
		d = 1 // "0n": the deadline is now
	}
	return d, nil
}

// grpcCode is the status of a response the gateway makes up for a call:
// the cause of the stream's end when the gateway ended it, else the
// gRPC mapping of the HTTP status it would have answered.
func grpcCode(ctx context.Context, c *grpcCall, status int, err error) grpc.Code {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errGRPCDeadline), c.expired():
		return grpc.DeadlineExceeded
	case errors.Is(cause, errMessageTooLarge), errors.Is(err, errMessageTooLarge):
		return grpc.ResourceExhausted
	case errors.Is(err, errGRPCTimeout):
		return grpc.Internal
	}
	return grpc.Local(status)
}

// grpcMessage says what the gateway saw, for grpc-message.
func grpcMessage(status int, err error) string {
	msg := "expressgateway: " + strconv.Itoa(status) + " " + encode.StatusText(status)
	if err != nil {
		msg += ": " + err.Error()
	}
	return msg
}

// grpcTrailers are the trailers that end a call the gateway cut after
// its head went out.
func grpcTrailers(code grpc.Code, msg string) frames.Frame {
	h := grpc.TrailersOnly(code, msg)
	h.Fields.Del("content-type")
	return frames.TrailersFrame(h.Fields)
}

// scanMessages relays a call's request body from src to a new link,
// reading each message's prefix: a message over the cap cancels the call
// (cancel with errMessageTooLarge) and resets the backend's body. The
// relay holds no message, only frames in flight on the two links.
func scanMessages(ctx context.Context, src *bus.Link, max uint32, cancel context.CancelCauseFunc, wg interface{ Go(func()) }) *bus.Link {
	dst := bus.NewLink(replayLinkBytes, nil)
	wg.Go(func() {
		s := grpc.Scanner{Max: max}
		for {
			f, err := src.Recv(ctx)
			if err != nil {
				dst.Close(err)
				return
			}
			if f.Kind == frames.KindData {
				if err := s.Feed(f.Data); err != nil {
					f.Release()
					cancel(fmt.Errorf("%w: %w", errMessageTooLarge, err))
					dst.Send(ctx, frames.ResetFrame(frames.CodeTooLarge))
					dst.Close(errMessageTooLarge)
					src.Discard(errMessageTooLarge)
					return
				}
			}
			end := f.End
			n := f.Len()
			if err := dst.Send(ctx, f); err != nil {
				src.Discard(err)
				return
			}
			src.Release(n)
			if end {
				dst.Close(io.EOF)
				return
			}
		}
	})
	return dst
}

// Paths of the health service the gateway answers itself.
const (
	healthCheck = "/grpc.health.v1.Health/Check"
	healthWatch = "/grpc.health.v1.Health/Watch"
)

// maxHealthRequest bounds the Check request read: it holds a service name.
const maxHealthRequest = 4 << 10

// health answers grpc.health.v1 for the route's pool (or the pool of the
// route named by the request's service): SERVING when a backend is
// healthy, NOT_SERVING when none is, NOT_FOUND for a service that names
// no route. Watch is UNIMPLEMENTED.
func (p *Proxy) health(ctx context.Context, st *stages.Stream, rt *Route, req *frames.Head, rec *record) {
	if req.Path == healthWatch {
		rec.err = errors.New("grpc.health.v1 Watch is not answered by the gateway")
		p.grpcLocal(ctx, st, grpc.Unimplemented, rec.err.Error(), rec)
		return
	}
	var body []byte
	for {
		f, err := st.Req.Recv(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rec.err = err
				p.grpcLocal(ctx, st, grpc.Internal, "expressgateway: health request body: "+err.Error(), rec)
				return
			}
			break
		}
		if len(body)+len(f.Data) > maxHealthRequest {
			f.Release()
			p.grpcLocal(ctx, st, grpc.ResourceExhausted, "expressgateway: health request over 4 KiB", rec)
			return
		}
		body = append(body, f.Data...)
		end := f.End
		st.Req.Consumed(&f)
		if end {
			break
		}
	}
	var in healthpb.HealthCheckRequest
	if len(body) < grpc.PrefixLen || body[0] != 0 || int(uint32(body[1])<<24|uint32(body[2])<<16|uint32(body[3])<<8|uint32(body[4])) != len(body)-grpc.PrefixLen ||
		proto.Unmarshal(body[grpc.PrefixLen:], &in) != nil {
		p.grpcLocal(ctx, st, grpc.Internal, "expressgateway: malformed grpc.health.v1 HealthCheckRequest", rec)
		return
	}
	pool := rt.Pool
	if in.Service != "" {
		named := p.Table.Load().Named(in.Service)
		if named == nil || named.Pool == nil {
			p.grpcLocal(ctx, st, grpc.NotFound, "expressgateway: no route named "+in.Service, rec)
			return
		}
		pool = named.Pool
	}
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if pool != nil {
		for _, b := range pool.Backends() {
			if b.Healthy() {
				status = healthpb.HealthCheckResponse_SERVING
				break
			}
		}
	}
	msg, _ := proto.Marshal(&healthpb.HealthCheckResponse{Status: status})
	out := make([]byte, grpc.PrefixLen, grpc.PrefixLen+len(msg))
	out[1], out[2], out[3], out[4] = byte(len(msg)>>24), byte(len(msg)>>16), byte(len(msg)>>8), byte(len(msg))
	out = append(out, msg...)
	h := &frames.Head{Status: 200, ContentLength: -1, Fields: frames.Fields{{Name: "content-type", Value: "application/grpc"}}}
	rec.status = 200
	rec.grpc.status = "0"
	if err := st.Resp.Send(ctx, frames.HeadersFrame(h, false)); err != nil {
		st.Resp.Close(err)
		return
	}
	if err := st.Resp.Send(ctx, frames.CopyData(out, false)); err != nil {
		st.Resp.Close(err)
		return
	}
	rec.out += int64(len(out))
	st.Resp.Send(ctx, frames.TrailersFrame(frames.Fields{{Name: "grpc-status", Value: "0"}}))
	st.Resp.Close(io.EOF)
}

// grpcLocal answers a call with a trailers-only response: one head that
// ends the stream, which every front encodes as its own trailers-only
// form (H2: one HEADERS with END_STREAM; H3: one HEADERS, then FIN).
func (p *Proxy) grpcLocal(ctx context.Context, st *stages.Stream, code grpc.Code, msg string, rec *record) {
	h := grpc.TrailersOnly(code, msg)
	rec.grpc.status = strconv.Itoa(int(code))
	p.respond(ctx, st, h, "", rec)
}

// grpcCut ends a call whose response head went out and whose body the
// gateway cannot finish: trailers with the status of what happened (the
// deadline, a message over the cap, the backend lost), so the client reads
// a gRPC status rather than a reset it would call INTERNAL. It reports
// false when the client is gone or the backend reset the stream with a
// cause of its own (that reset is relayed as it came).
func (p *Proxy) grpcCut(sctx, ctx context.Context, st *stages.Stream, err error, rec *record) bool {
	var re *frames.ResetError
	if sctx.Err() != nil || errors.As(err, &re) && re.Code != frames.CodeNone && re.Code != frames.CodeUpstream {
		return false
	}
	code, why := grpc.Unavailable, errBackendLost
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errGRPCDeadline), rec.grpc.expired():
		code, why = grpc.DeadlineExceeded, errGRPCDeadline
	case errors.Is(cause, errMessageTooLarge):
		code, why = grpc.ResourceExhausted, cause
	case errors.Is(err, errMessageTooLarge):
		code, why = grpc.ResourceExhausted, err
	}
	rec.grpc.status = strconv.Itoa(int(code))
	msg := "expressgateway: " + why.Error()
	if why == errBackendLost {
		msg += ": " + err.Error()
	}
	return st.Resp.Send(sctx, grpcTrailers(code, msg)) == nil
}
