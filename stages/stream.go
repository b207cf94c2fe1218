package stages

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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
	// Tunnel is set by the front on a tunnel request (a WebSocket): how the
	// tunnel ended, for the actor's metrics and log line.
	Tunnel *TunnelEnd
	// Datagrams is set by an HTTP/3 front that takes HTTP Datagrams
	// (RFC 9297): the stream's side channel to and from the backend.
	Datagrams *Datagrams
}

// TunnelEnd is how a tunnel ended: the WebSocket close code of the first
// Close that went by either way (or that the gateway sent), and when the
// front's writer relayed its last byte. The front records; the actor,
// whose side of the tunnel ends first, waits for it.
type TunnelEnd struct {
	code atomic.Uint32
	once sync.Once
	done chan struct{}
}

// NewTunnelEnd returns the end record of a tunnel that has not ended.
func NewTunnelEnd() *TunnelEnd { return &TunnelEnd{done: make(chan struct{})} }

// Close records a close code; the first one wins.
func (e *TunnelEnd) Close(code uint16) {
	if code != 0 {
		e.code.CompareAndSwap(0, uint32(code))
	}
}

// Done says the front has relayed the tunnel's last byte (or the tunnel
// never opened).
func (e *TunnelEnd) Done() { e.once.Do(func() { close(e.done) }) }

// Wait waits up to d for Done and returns the close code: 1006 (closed
// abnormally) when no Close went by.
func (e *TunnelEnd) Wait(d time.Duration) uint16 {
	t := time.NewTimer(d)
	select {
	case <-e.done:
	case <-t.C:
	}
	t.Stop()
	if c := e.code.Load(); c != 0 {
		return uint16(c)
	}
	return 1006
}

// Handler runs the stream actor for one stream: route, translate, upstream.
// It returns when the response is complete or aborted, having closed
// st.Resp and discarded st.Req.
type Handler interface {
	ServeStream(ctx context.Context, st *Stream)
}
