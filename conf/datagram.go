package conf

import "strings"

// validateExtendedConnect checks a listener's extended_connect_protocols:
// on an HTTP listener only; tokens (RFC 9110 §5.6.2, the :protocol grammar
// of RFC 8441 §4), each once, and not websocket, whose tunnels are
// inspected and limited by [listeners.websocket].
func validateExtendedConnect(l *Listener, k string, ps *Problems) {
	protos := l.ExtendedConnectProtocols
	if len(protos) > 0 && IsL4(l.Protocol) {
		ps.Addf(k, "only for HTTP listeners (h1, h1s, quic), not %s", l.Protocol)
		return
	}
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
