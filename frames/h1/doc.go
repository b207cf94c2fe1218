// Package h1 is the strict HTTP/1.1 codec (RFC 9112): it parses request and
// response heads into the neutral frames.Head, decodes chunked bodies
// incrementally, and encodes heads and chunks by appending to a buffer.
//
// It is a pure codec, used by the decode and encode stages: no sockets,
// goroutines, clocks, config or logs; it imports frames only.
//
// Parsers take the bytes received so far and return how many they consumed.
// Head parsers keep no state between calls: call again only after a read
// added bytes, since each call rescans the head (MaxHeadBytes bounds the
// cost). ErrShort means "need more input"; any other error is an *Error carrying
// the status to answer with and a unique counter token. Nothing a parser
// returns can contain CR, LF or NUL, so encoders write values unchecked.
//
// Strictness choices, where RFC 9112 leaves room:
//
//   - Line endings must be CRLF. A bare LF (RFC 9112 §2.2 allows "MAY
//     recognize a single LF") is rejected, because proxies that disagree on
//     line endings are a request-smuggling vector; a bare CR is rejected as
//     §2.2 allows.
//   - obs-fold and whitespace before the first field line are rejected
//     (§5.2, §2.2), in requests (400) and responses (502).
//   - Content-Length together with Transfer-Encoding is rejected (§6.3 says
//     it "ought to be handled as an error"), in requests and responses.
//   - A Transfer-Encoding whose final coding is not chunked is rejected in
//     responses too (§6.3 would read until close), because the proxy cannot
//     forward an undecodable coding faithfully.
//   - An empty Host in an HTTP/1.1 request is rejected: every http and https
//     URI has a non-empty host (RFC 9110 §4.2.1).
//   - HTTP/1.x with x > 1 is processed as HTTP/1.1 (RFC 9110 §2.5); any
//     other major version answers 505.
//   - Responses that cannot have a body (1xx, 204, 304, to HEAD, 2xx to
//     CONNECT) are not judged on their framing fields beyond syntax: RFC
//     9112 §6.3 items 1–2 end them at the empty line whatever they say.
//   - Upgrade is reported as the whole Upgrade field value when Connection
//     lists "upgrade"; a client offering several protocols sends a list.
//   - Forbidden trailer fields (framing, routing, authentication, ...) are
//     dropped from decoded trailers and never encoded (RFC 9110 §6.5.1).
package h1
