package quic

// MaxConnIDLen is the longest Connection ID in bytes. RFC 9000 §17.2: "In
// QUIC version 1, this value MUST NOT exceed 20 bytes. Endpoints that
// receive a version 1 long header with a value larger than 20 MUST drop the
// packet." We apply it to every version, so a ConnID fits a fixed array.
const MaxConnIDLen = 20

// MinInitialDatagram is the smallest UDP payload that may carry a client
// Initial (RFC 9000 §14.1: "A client MUST expand the payload of all UDP
// datagrams carrying Initial packets to at least the smallest allowed
// maximum datagram size of 1200 bytes"). A passthrough drops smaller ones
// so an attacker cannot make us spend state on tiny spoofed packets.
const MinInitialDatagram = 1200

// RetryIntegrityTagLen is the size of the tag that ends a Retry packet (RFC
// 9001 §5.8).
const RetryIntegrityTagLen = 16

// MaxVarint is the largest value a variable-length integer encodes (RFC
// 9000 §16: 62 usable bits).
const MaxVarint = 1<<62 - 1

// longHeaderMin is the smallest long header: the first byte, a 4-byte
// version and the two Connection ID length bytes (RFC 8999 §5.1).
const longHeaderMin = 1 + 4 + 1 + 1

// MaxDatagram is the largest UDP payload QUIC allows (RFC 9000 §18.2,
// max_udp_payload_size: "Values above 65527 are invalid"). A Length or token
// length past it cannot belong to a real packet and is malformed, not short.
const MaxDatagram = 65527
