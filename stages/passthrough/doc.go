// Package passthrough is QUIC Mode A: a UDP listener that forwards QUIC
// packets to backends without decrypting them, routed by Connection ID.
//
// It reads only the RFC 8999 invariants of each packet (the long-header
// bit, the version, the Connection IDs). A Destination Connection ID that
// decodes under a configured QUIC-LB config (package quiclb) goes to the
// backend its server ID names, with no state; any other packet goes where
// the bounded, TTL'd learned-CID table says, else by a consistent hash of
// its 4-tuple. Replies reach the client from the listener's address: each
// client 4-tuple gets its own upstream socket (a flow).
//
// Address validation (Retry) is the backends' by default: they Retry and
// the listener relays it. With Options.Retry (mint_retry) the listener
// answers tokenless Initials with its own Retry, its token sealed in
// quic-go's format under the key the backends share (quiclb), and checks
// the tokens that come back before a flow opens. Packets that would start
// a flow are rate-limited per source IP.
package passthrough
