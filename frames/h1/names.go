package h1

import "strings"

// commonNames are field names that arrive in mixed case often enough to be
// worth returning as constants: lowering them then allocates nothing.
// Browsers and most HTTP/1 libraries send canonical case ("User-Agent").
var commonNames = [...]string{
	"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
	"access-control-allow-credentials", "access-control-allow-headers",
	"access-control-allow-methods", "access-control-allow-origin",
	"access-control-expose-headers", "access-control-max-age",
	"access-control-request-headers", "access-control-request-method",
	"age", "allow", "alt-svc", "authorization", "cache-control", "connection",
	"content-disposition", "content-encoding", "content-language", "content-length",
	"content-location", "content-range", "content-security-policy", "content-type",
	"cookie", "date", "dnt", "etag", "expect", "expires", "forwarded", "from",
	"grpc-encoding", "grpc-message", "grpc-status", "grpc-timeout", "host",
	"http2-settings", "if-match", "if-modified-since", "if-none-match", "if-range",
	"if-unmodified-since", "keep-alive", "last-modified", "link", "location",
	"max-forwards", "origin", "pragma", "priority", "proxy-authenticate",
	"proxy-authorization", "proxy-connection", "range", "referer", "refresh",
	"retry-after", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform",
	"sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-user",
	"sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-key",
	"sec-websocket-protocol", "sec-websocket-version", "server", "set-cookie",
	"strict-transport-security", "te", "trailer", "transfer-encoding", "upgrade",
	"upgrade-insecure-requests", "user-agent", "vary", "via", "warning",
	"www-authenticate", "x-content-type-options", "x-csrf-token", "x-forwarded-for",
	"x-forwarded-host", "x-forwarded-port", "x-forwarded-proto", "x-frame-options",
	"x-real-ip", "x-request-id", "x-requested-with", "x-xss-protection",
}

// namesByLen indexes commonNames by length, so a lookup compares against
// a handful of candidates.
var namesByLen = func() (t [40][]string) {
	for _, n := range commonNames {
		t[len(n)] = append(t[len(n)], n)
	}
	return t
}()

// lowerName returns name in lower case. The caller knows name has an
// upper-case letter; a common name comes back as a constant, any other
// is lowered into a new string.
func lowerName(name string) string {
	if len(name) < len(namesByLen) {
		for _, c := range namesByLen[len(name)] {
			if foldsTo(name, c) {
				return c
			}
		}
	}
	return strings.ToLower(name)
}

// foldsTo reports whether the valid field name equals common, a name made
// of [a-z0-9-] only. OR-ing 0x20 lowers A-Z and leaves digits and "-"
// alone; the only other tchars it changes ("^", "_") become "~" and DEL,
// which no common name holds, so the comparison stays exact.
func foldsTo(name, common string) bool {
	for i := 0; i < len(name); i++ {
		if name[i]|0x20 != common[i] {
			return false
		}
	}
	return true
}
