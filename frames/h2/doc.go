// Package h2 is the HTTP/2 wire codec (RFC 9113, RFC 7541): our server and
// client connection state machines built on golang.org/x/net/http2's Framer
// and hpack. It validates what a peer sends (stream states, flow-control
// windows, RFC 9113 §8 message rules), turns header blocks into the neutral
// frames.Head and back, and types every failure by what it destroys:
// ConnError (→ GOAWAY) or StreamError (→ RST_STREAM).
//
// Like every frames subpackage it is pure: no goroutines, sockets, clocks,
// config or logs. The stage that owns the connection (stages/decode for a
// client, stages/upstream for a backend) reads events from Conn.Next,
// queues what it sends on a Sched (the send engine both roles share:
// queues, windows, control-frame priority, round-robin) and writes each
// batch through Writer; only that stage turns errors into frames on the
// wire. It may import frames, x/net/http2 and hpack only.
package h2
