package conf

import "strings"

// validateExtendedConnect checks [listeners.quic] extended_connect_protocols:
// tokens (RFC 9110 §5.6.2, the :protocol grammar of RFC 8441 §4), each
// once, and not websocket, whose tunnels are inspected and limited by
// [listeners.websocket].
func validateExtendedConnect(k string, protos []string, ps *Problems) {
	seen := make(map[string]bool, len(protos))
	for _, p := range protos {
		switch {
		case !poolToken(p):
			ps.Addf(k, "%q is not a token (RFC 9110 §5.6.2)", p)
		case strings.EqualFold(p, "websocket"):
			ps.Addf(k, "websocket is set by [listeners.websocket] h3_extended_connect, not here")
		case seen[strings.ToLower(p)]:
			ps.Addf(k, "%q is listed twice", p)
		}
		seen[strings.ToLower(p)] = true
	}
}
