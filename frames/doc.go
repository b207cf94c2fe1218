// Package frames holds the protocol-neutral Frame that flows between the
// gateway's stages, and (in its subpackages) the pure wire codecs that turn
// bytes into frames and back: frames/h1, frames/h2, frames/h3, frames/quic.
//
// Nothing here opens a socket, starts a goroutine, reads a clock, reads
// config or logs. It may import golang.org/x/net/http2 (and hpack) and
// quic-go's qpack only.
package frames
