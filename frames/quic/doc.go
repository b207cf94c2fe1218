// Package quic is the QUIC packet-header codec (RFC 8999 invariants, RFC
// 9000 §17 version 1 and RFC 9369 version 2 headers) and the variable-length
// integer encoding (RFC 9000 §16) that QUIC and HTTP/3 share.
//
// It reads only what is sent in the clear: the header form, the version, the
// Connection IDs, the long-header type, an Initial's token and the Length
// field. Packet numbers and payloads are protected and stay opaque. The
// QUIC passthrough (Mode A) routes datagrams by their Destination
// Connection ID with it; the terminating listener uses quic-go.
//
// It is a pure codec: no sockets, goroutines, clocks, config or logs, and no
// allocation in the parsers. Parsers never read past len(b); ErrShort means
// the input ends before the header does, and every other error is a typed
// malformed-input verdict. A ConnID is a fixed-size array value, so Connection IDs can be
// map keys and copied freely.
//
// It also builds and checks Retry packets with their integrity tag (RFC
// 9001 §5.8, RFC 9369 §3.3.3), for a load balancer that validates client
// addresses itself.
package quic
