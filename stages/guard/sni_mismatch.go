package guard

import "strings"

// SNIMismatch counts requests answered 421 because the host they name is
// not the server name their TLS connection was opened for.
var SNIMismatch = Counter("sni_mismatch")

// Misdirected reports whether a request naming authority (Host or
// :authority) arrived on a TLS or QUIC connection whose client asked for
// serverName in SNI, a different host. The two are compared without port
// or trailing dot, case-insensitively (RFC 9110 §4.2.3: host names are
// case-insensitive). Such a request is answered 421 Misdirected Request
// (RFC 9110 §15.5.20), which a client that coalesced connections takes as
// "open a new one for this host"; forwarding it would let a client reach
// any route behind a certificate it was allowed to see (domain fronting).
//
// A client that sent no SNI (one connecting to an IP address; RFC 6066 §3
// forbids IP literals in SNI) has nothing to compare and is not checked,
// nor is a request without an authority.
func Misdirected(serverName, authority string) bool {
	if serverName == "" || authority == "" {
		return false
	}
	host := authority
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return !strings.EqualFold(strings.TrimSuffix(host, "."), strings.TrimSuffix(serverName, "."))
}
