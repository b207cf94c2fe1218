package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Options are the timeouts and pool limits of every transport.
type Options struct {
	ConnectTimeout time.Duration
	HeadTimeout    time.Duration // request sent → response head
	BodyTimeout    time.Duration // no response-body progress for this long
	IdleTimeout    time.Duration // pooled connection idle
	MaxAge         time.Duration // pooled connection lifetime
	MaxIdle        int           // idle connections kept per backend
}

// Response is a backend's response: its head, then its body as frames.
type Response struct {
	Head *frames.Head
	// End is set when the head ended the response (HTTP/2 END_STREAM on
	// the HEADERS: a trailers-only gRPC answer, say): no body follows, and
	// the head goes to the client with its end, as one frame.
	End  bool
	body BodyReader
}

// BodyReader yields a response body: Data frames, the last with End set, or
// a Trailers frame. An error means the body was cut: it must reach the
// client as an abort.
type BodyReader interface {
	Next(ctx context.Context) (frames.Frame, error)
	// Close ends the exchange; abort discards the connection instead of
	// returning it to its pool.
	Close(abort bool)
}

// Next returns the next body frame.
func (r *Response) Next(ctx context.Context) (frames.Frame, error) { return r.body.Next(ctx) }

// Close ends the exchange.
func (r *Response) Close(abort bool) { r.body.Close(abort) }

// Transport sends one request to one backend.
type Transport interface {
	// RoundTrip writes req and streams its body from body (the stream's
	// request link, whose consumer the transport becomes: it Discards it
	// when done), and returns the response head. A nil error means the
	// caller must Close the response.
	RoundTrip(ctx context.Context, b *route.Backend, req *frames.Head, body *bus.Link) (*Response, error)
}

// interimKey carries the interim-response hook of a round trip.
type interimKey struct{}

// WithInterim returns a context under which every transport hands each
// interim (1xx) response head of the round trip to fn before the final
// head, in order, so Early Hints reach the client while the backend still
// works. A 101 is never interim: it is a final head. fn runs on the
// goroutine that called RoundTrip and may keep the head; it is how
// httptrace's Got1xxResponse works for net/http, kept off the Transport
// interface because most round trips have no use for it.
func WithInterim(ctx context.Context, fn func(*frames.Head)) context.Context {
	return context.WithValue(ctx, interimKey{}, fn)
}

// datagramsKey carries the HTTP Datagrams of a round trip's stream.
type datagramsKey struct{}

// WithDatagrams returns a context under which a transport that carries
// HTTP Datagrams (H3, to a server that takes them) binds d to the
// request stream it opens; the others leave d unbound.
func WithDatagrams(ctx context.Context, d *stages.Datagrams) context.Context {
	return context.WithValue(ctx, datagramsKey{}, d)
}

func datagramsOf(ctx context.Context) *stages.Datagrams {
	d, _ := ctx.Value(datagramsKey{}).(*stages.Datagrams)
	return d
}

// interimHook returns the hook WithInterim set, or nil.
func interimHook(ctx context.Context) func(*frames.Head) {
	fn, _ := ctx.Value(interimKey{}).(func(*frames.Head))
	return fn
}

// relayInterim hands an interim head to the hook, counting them: past
// frames.MaxInterimResponses the response is malformed.
func relayInterim(ctx context.Context, n *int, h *frames.Head) error {
	if *n++; *n > frames.MaxInterimResponses {
		return ErrBadResponse
	}
	if fn := interimHook(ctx); fn != nil {
		h.ContentLength = -1
		fn(h)
	}
	return nil
}

// BackendOpts is what the upstream keeps in route.Backend.Opts: the
// backend's TLS client config (nil for cleartext) and its connection pool.
type BackendOpts struct {
	TLS  *tls.Config
	pool *connPool
	h2   h2Pool // multiplexed HTTP/2 connections (protocol h2)
}

// ErrTimeout is returned when the backend did not answer in time (→ 504).
var ErrTimeout = errors.New("upstream: backend timed out")

// ErrBadResponse is returned for a malformed backend response (→ 502).
var ErrBadResponse = errors.New("upstream: malformed backend response")

// ErrCodingUnsupported is returned for a request whose body carries a
// transfer coding other than chunked (a front with strict_te off let it
// through) when the backend speaks HTTP/2 or HTTP/3, which cannot declare
// one (RFC 9113 §8.2.2): forwarding it would drop the coding (→ 501).
var ErrCodingUnsupported = errors.New("upstream: transfer coding not expressible to this backend")

// transferCoded reports a request that ErrCodingUnsupported refuses.
func transferCoded(req *frames.Head) bool { return req.Fields.Has("transfer-encoding") }

// observeConnect records a successful connect to b (TCP or QUIC, and the
// TLS handshake) begun at start: slow connects are what an operator sees
// first of a backend going bad, before any request fails.
// The request whose try made the connect hears how long it took (the
// access log's upstream_connect_seconds), through WithConnectTime.
func observeConnect(ctx context.Context, b *route.Backend, proto string, start time.Time) {
	d := time.Since(start)
	stages.Histogram(nil, `expressgateway_upstream_connect_duration_seconds{backend="`+
		stages.LabelValue(b.Address)+`",protocol="`+proto+`"}`).Update(d.Seconds())
	if fn, _ := ctx.Value(connectKey{}).(func(time.Duration)); fn != nil {
		fn(d)
	}
}

type connectKey struct{}

// WithConnectTime returns a context under which a try that has to connect
// to its backend (TCP or QUIC, and TLS) reports the connect's duration to
// fn; a try on a pooled connection reports nothing.
func WithConnectTime(ctx context.Context, fn func(time.Duration)) context.Context {
	return context.WithValue(ctx, connectKey{}, fn)
}

// bodyCut returns the client's reset when the request body was cut before
// the round trip began: such a request is never sent, so no backend runs a
// handler for a body that cannot complete.
func bodyCut(body *bus.Link) *frames.ResetError {
	var re *frames.ResetError
	if err := body.Cause(); err != nil && errors.As(err, &re) {
		return re
	}
	return nil
}

// NewBackendOpts returns the upstream state for one backend; tlsCfg is nil
// for a cleartext backend.
func NewBackendOpts(tlsCfg *tls.Config) *BackendOpts {
	return &BackendOpts{TLS: tlsCfg, pool: &connPool{}}
}

// tunnelHead is a neutral tunnel request as an extended CONNECT to an
// HTTP/2 or HTTP/3 backend (RFC 8441 §4, RFC 9220 §3): an HTTP/1.1
// client's Sec-WebSocket-Key has no meaning there (RFC 8441 §5) and is
// dropped; the bytes that follow are the tunnel's, of no set length.
func tunnelHead(req *frames.Head) *frames.Head {
	h := *req
	h.Fields = make(frames.Fields, 0, len(req.Fields))
	for _, f := range req.Fields {
		if f.Name != "sec-websocket-key" {
			h.Fields = append(h.Fields, f)
		}
	}
	h.ContentLength = -1
	return &h
}
