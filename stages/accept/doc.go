// Package accept is the accept stage: listening sockets (SO_REUSEPORT),
// per-IP and in-flight connection caps, TLS handshakes with a deadline and
// ALPN, and the accept loop that hands each connection to its front.
package accept
