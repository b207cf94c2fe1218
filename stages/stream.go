package stages

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync/atomic"

	"github.com/expressgateway/expressgateway/bus"
)

// ConnInfo is what a stream knows of the client connection it came on.
type ConnInfo struct {
	Listener string         // listener name, for metrics and logs
	Remote   netip.AddrPort // the client's address
	Local    netip.AddrPort // the address the client connected to
	TLS      *tls.ConnectionState
	// Proto is the front protocol: "HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/3".
	Proto string
}

// Scheme is "https" for a TLS (or QUIC) connection and "http" otherwise.
func (c *ConnInfo) Scheme() string {
	if c.TLS != nil || c.Proto == "HTTP/3" {
		return "https"
	}
	return "http"
}

// Stream is one request/response exchange. The front's decoder is the
// producer of Req (Headers, Data…, optional Trailers, or a Reset when the
// client's body is cut short); the stream actor is the producer of Resp,
// which the front's encoder consumes. The actor owns both links' far ends:
// it Discards Req when it stops reading and Closes Resp when it is done.
type Stream struct {
	Req  *bus.Link
	Resp *bus.Link
	Conn *ConnInfo
	// KeepAlive is false when the front will close the connection after this
	// response (H1 only); the actor then forwards no keep-alive hints.
	KeepAlive bool
	// Early is set for a request that arrived in TLS/QUIC early data.
	Early bool
	// ReqBytes counts request body bytes the decoder passed on (metrics and
	// the access log).
	ReqBytes atomic.Int64
}

// Handler runs the stream actor for one stream: route, translate, upstream.
// It returns when the response is complete or aborted, having closed
// st.Resp and discarded st.Req.
type Handler interface {
	ServeStream(ctx context.Context, st *Stream)
}
