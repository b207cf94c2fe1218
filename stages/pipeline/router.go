package pipeline

import (
	"strings"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Route is one compiled [[listeners.routes]] entry (or the listener's
// default route).
type Route struct {
	Name       string
	host       string // lowercase; "*.x" matches subdomains; "" any
	pathPrefix string
	Pool       *route.Pool
	Direct     *conf.DirectResponse
}

// Table is a listener's routes in match order; it is immutable and swapped
// whole on reload.
type Table struct {
	routes []*Route
	def    *Route
}

// Named returns the route called name, or nil.
func (t *Table) Named(name string) *Route {
	for _, r := range t.routes {
		if r.Name == name {
			return r
		}
	}
	if t.def != nil && t.def.Name == name {
		return t.def
	}
	return nil
}

// Match returns the first route whose host and path prefix match, or the
// default route (nil when there is none: 404).
func (t *Table) Match(authority, path string) *Route {
	host := hostOnly(authority)
	for _, r := range t.routes {
		if r.matchHost(host) && strings.HasPrefix(path, r.pathPrefix) {
			return r
		}
	}
	return t.def
}

func (r *Route) matchHost(host string) bool {
	switch {
	case r.host == "":
		return true
	case strings.HasPrefix(r.host, "*."):
		return strings.HasSuffix(host, r.host[1:]) && len(host) > len(r.host)-1
	}
	return host == r.host
}

// hostOnly lowercases an authority and drops its port.
func hostOnly(a string) string {
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.Contains(a[i:], "]") {
		a = a[:i]
	}
	return strings.ToLower(a)
}
