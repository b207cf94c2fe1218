// Package quicrelay is QUIC Mode B: a client's QUIC connection, already
// terminated by the accept stage with the listener's certificate, is
// re-originated as a new QUIC connection to a backend of a route pool
// (its certificate verified, ALPN the one the client negotiated), and
// everything the application does on it crosses: every stream either side
// opens (bidirectional and unidirectional), RESET_STREAM and STOP_SENDING
// with their codes, DATAGRAM frames (RFC 9221) through bounded queues,
// and the connection's close with its application code and reason.
//
// Memory per stream is one pooled copy buffer per direction: QUIC flow
// control on each side is the only other bound, so a slow reader slows
// its writer rather than filling the relay.
//
// It may import quic-go, zerolog, the route stage (pools, picks,
// outcomes) and the stages package (metrics helpers, panic handling); it
// reads no config and opens no listening socket (one ephemeral UDP socket
// per Relay dials the backends).
package quicrelay
