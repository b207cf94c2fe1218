package conf

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"time"
)

// liveKeys are the key-path prefixes a SIGHUP applies without a restart:
// new connections and new requests see the new value, in-flight ones
// finish under the old. A listener is identified by its name: one added is
// bound, one removed drains and closes, and a changed address or protocol
// is a remove plus an add. Everything else is logged as restart-required
// and counted.
var liveKeys = []string{
	"listeners[].name",
	"listeners[].address",
	"listeners[].protocol",
	"listeners[].drain_timeout_ms",
	"listeners[].drain_jitter_ms",
	"listeners[].backends",
	"listeners[].pool",
	"listeners[].routes",
	"listeners[].http",
	"listeners[].alt_svc",
	"listeners[].h2_security",
	"listeners[].websocket", // each new connection takes the current limits
	"listeners[].grpc",      // read per request, as the rest of ProxySettings
	"listeners[].extended_connect_protocols",
	// The QUIC endpoint builds each new connection's transport parameters
	// from the listener's current settings; the socket, its secret, the
	// certificate paths and the payload size stay as bound.
	"listeners[].quic.max_idle_timeout_ms",
	"listeners[].quic.allow_0rtt",
	"listeners[].quic.early_data_policy",
	"listeners[].quic.retry_above_new_conns_per_sec",
	"listeners[].quic.max_field_section_size",
	"listeners[].quic.h3_datagrams",
	// A Mode B listener's pool is swapped as backends are; its stream,
	// datagram, ALPN and SNI settings are read per new connection.
	"listeners[].quic.raw_proxy.backend_addr",
	"listeners[].quic.raw_proxy.sni",
	"listeners[].quic.raw_proxy.dgram_queue_cap",
	"listeners[].quic.raw_proxy.max_relay_streams",
	"listeners[].quic.raw_proxy.alpn",
	"pools",
	"runtime.drain_timeout_ms",
	"runtime.drain_jitter_ms",
	"runtime.readiness_settle_ms",
	"runtime.max_keepalive_requests",
	"runtime.max_requests_per_h3_connection",
	"runtime.header_underscore_policy",
	"runtime.connect_timeout_ms",
	"runtime.upstream_",
	"runtime.watchdog",
	"security",
	"observability.access_log", // and access_log_format, access_log_path (reopened)
	"observability.trust_request_id",
	"xdp", // Program.Apply swaps services, backends and deny list live
	// runtime.dns is restart: the resolvers keep the servers and bounds
	// they were built with (a DNS name's set itself follows the TTL).
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

// Change is one key whose value differs between two configs.
type Change struct {
	// Path names the key with its listener or pool:
	// listeners["web"].http.head_timeout_ms, pools["api"] (a pool added,
	// removed or changed).
	Path string
	// Live is Reloads of the path in the docs' form.
	Live bool
}

// Diff lists the keys whose values differ from old to next, sorted by
// path. Listeners are matched by name and one present on a side only is
// not listed (a reload adds or removes it); pools are matched by name and
// listed whole.
func Diff(old, next *Config) []Change {
	a, b := flattenConfig(old), flattenConfig(next)
	both := map[string]bool{}
	for _, l := range old.Listeners {
		for _, m := range next.Listeners {
			if l.Name == m.Name {
				both[itemKey("listeners", l.Name)] = true
			}
		}
	}
	// A key of a listener on one side only is its add or remove, not a
	// change.
	skip := func(k string) bool {
		if !strings.HasPrefix(k, "listeners[") {
			return false
		}
		return !both[k[:strings.Index(k, `"]`)+2]]
	}
	var out []Change
	for k, v := range b {
		if w, ok := a[k]; (ok && w == v) || skip(k) {
			continue
		}
		out = append(out, Change{Path: k, Live: Reloads(docPath(k))})
	}
	for k := range a {
		if _, ok := b[k]; !ok && !skip(k) {
			out = append(out, Change{Path: k, Live: Reloads(docPath(k))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// itemKey names a listener or pool in a Change path: listeners["web"]
// (quoted: a default name is an address, [::1]:443).
func itemKey(table, name string) string { return table + `["` + name + `"]` }

// docPath turns listeners["web"].http.x into the docs' listeners[].http.x.
func docPath(k string) string {
	i := strings.IndexByte(k, '[')
	j := strings.Index(k, `"]`)
	if i < 0 || j < i {
		return k
	}
	return k[:i+1] + k[j+1:]
}

// flattenConfig maps every leaf key of c to its value (JSON, so pointers
// are followed): tables recurse, arrays of tables are one value, except
// listeners and pools, which are keyed by name.
func flattenConfig(c *Config) map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		switch tag {
		case "listeners":
			for _, l := range c.Listeners {
				flatten(reflect.ValueOf(l), itemKey("listeners", l.Name), out)
			}
		case "pools":
			for _, p := range c.Pools {
				out[itemKey("pools", p.Name)] = jsonOf(p)
			}
		default:
			flatten(v.Field(i), tag, out)
		}
	}
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

func flatten(v reflect.Value, path string, out map[string]string) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() || v.Elem().Kind() != reflect.Struct {
			out[path] = jsonOf(v.Interface())
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.Type() == durationType {
		out[path] = jsonOf(v.Interface())
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("koanf")
		if t.Field(i).Anonymous && tag == ",squash" {
			flatten(v.Field(i), path, out)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		flatten(v.Field(i), path+"."+tag, out)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Drain is a listener's drain budget: how long its connections get to
// finish once it stops accepting (its own drain_timeout_ms, else def, the
// runtime's), and the window over which each one is told to close, at a
// random moment in [0, jitter), so that clients do not all come back at
// once (its own drain_jitter_ms, else the runtime's, else a quarter of the
// timeout; never past the timeout).
func (r *Runtime) Drain(l *Listener, def time.Duration) (timeout, jitter time.Duration) {
	timeout = def
	if l.DrainTimeoutMs != nil {
		timeout = time.Duration(*l.DrainTimeoutMs) * time.Millisecond
	}
	jitter = timeout / 4
	switch {
	case l.DrainJitterMs != nil:
		jitter = time.Duration(*l.DrainJitterMs) * time.Millisecond
	case r.DrainJitterMs != nil:
		jitter = time.Duration(*r.DrainJitterMs) * time.Millisecond
	}
	return timeout, min(jitter, timeout)
}
