package h1

import (
	"net/netip"
	"strings"
)

// validHost reports whether s is uri-host [ ":" port ] (RFC 9110 §7.2,
// RFC 3986 §3.2.2) with a non-empty host; needPort requires the port, as
// the authority-form of CONNECT does (RFC 9112 §3.2.3).
//
// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
// code to any HTTP/1.1 request message that lacks a Host header field and
// to any request message that contains more than one Host header field
// line or a Host header field with an invalid field value."
func validHost(s string, needPort bool) bool {
	if s == "" {
		return false
	}
	var port string
	hasPort := false
	if s[0] == '[' {
		// IP-literal: only IPv6 without a zone; IPvFuture is not routable.
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		addr, err := netip.ParseAddr(s[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return false
		}
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return false
		}
	} else {
		host := s
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if host == "" {
			return false
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !hostOK[c] {
				return false // also ":" of a bare IPv6 address, "@" of userinfo
			}
			if c == '%' && (i+2 >= len(host) || !isHex(host[i+1]) || !isHex(host[i+2])) {
				return false
			}
		}
	}
	if !hasPort {
		return !needPort
	}
	// port = *DIGIT; an empty port is legal in RFC 3986 but says nothing a
	// router can use and is a classic parser-differential, so we refuse it.
	if port == "" || len(port) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
