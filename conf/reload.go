package conf

import "strings"

// liveKeys are the key-path prefixes a SIGHUP applies without a restart
// (listener identity is its name; address and protocol re-bind, so they
// need one). Everything else is logged as restart-required and counted.
var liveKeys = []string{
	"listeners[].backends",
	"listeners[].pool",
	"listeners[].routes",
	"listeners[].http",
	"listeners[].alt_svc",
	"listeners[].h2_security",
	"pools",
	"runtime.max_keepalive_requests",
	"runtime.header_underscore_policy",
	"runtime.connect_timeout_ms",
	"runtime.upstream_",
	"runtime.watchdog",
	"security",
	"observability.access_log",
	"xdp", // Program.Apply swaps services, backends and deny list live
}

// Reloads reports whether a change to the key path (in the docs' form,
// listeners[].http.body_timeout_ms) is applied live by SIGHUP.
func Reloads(path string) bool {
	for _, k := range liveKeys {
		if strings.HasPrefix(path, k) {
			return true
		}
	}
	return false
}
