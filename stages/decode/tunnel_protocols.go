package decode

import "strings"

// relaysProtocol reports whether an extended CONNECT with :protocol p is
// relayed as a tunnel: p is one of the configured protocols (the upgrade
// token registry is open, RFC 8441 §4 and RFC 9220 §3; the config lists
// the ones the backends speak).
func relaysProtocol(protocols []string, p string) bool {
	for _, q := range protocols {
		if strings.EqualFold(p, q) {
			return true
		}
	}
	return false
}
