package translate

import (
	"net/netip"
	"strconv"

	"github.com/expressgateway/expressgateway/frames"
)

// hopByHop fields never cross the proxy (RFC 9110 §7.6.1), besides those
// the Connection field names.
var hopByHop = [...]string{
	"connection",
	"proxy-connection", // non-standard, but libcurl sends it
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"te", // re-added as "te: trailers" when the client sent it
	// Not "trailer": RFC 9110 §6.6.2 makes it end-to-end, and an HTTP/2
	// peer keeps only the trailer fields the head announced.
	"transfer-encoding",
	"upgrade",
}

// stripHopByHop removes the fields named in Connection, then the fixed list.
func stripHopByHop(fs *frames.Fields) {
	if fs.Has("connection") {
		var named []string
		fs.EachToken("connection", func(t string) bool {
			named = append(named, lower(t))
			return true
		})
		for _, n := range named {
			fs.Del(n)
		}
	}
	for _, n := range hopByHop {
		if fs.Has(n) {
			fs.Del(n)
		}
	}
}

// transferCodings returns the transfer codings other than chunked that
// fs lists, comma-separated; only a front with strict_te off lets one
// through (RFC 9112 §6.1: chunked is last; what precedes it is the body's).
func transferCodings(fs frames.Fields) string {
	var out string
	fs.EachToken("transfer-encoding", func(t string) bool {
		if lower(t) != "chunked" {
			if out != "" {
				out += ", "
			}
			out += t
		}
		return true
	})
	return out
}

// Forwarding is what the request rewrite needs to know of the client side.
type Forwarding struct {
	Remote  netip.Addr
	Scheme  string // the front's scheme: http or https
	Trusted func(netip.Addr) bool
	// Via is our pseudonym in Via (RFC 9110 §7.6.3).
	Via string
}

// Request rewrites a request head for the backend, in place. It reads the
// inbound te before stripping, so "te: trailers" survives (httputil's care
// over inbound versus outbound).
func Request(h *frames.Head, fw *Forwarding) {
	teTrailers := h.Fields.HasToken("te", "trailers")
	codings := transferCodings(h.Fields)
	stripHopByHop(&h.Fields)
	if teTrailers {
		h.Fields.Add("te", "trailers")
	}
	if codings != "" {
		// The body still carries them: they travel on, never dropped
		// (the HTTP/1.1 encoder adds chunked; HTTP/2 and HTTP/3
		// transports refuse such a request).
		h.Fields.Add("transfer-encoding", codings)
	}
	// The gateway answers 100-continue itself; the backend gets the body.
	h.Fields.Del("expect")
	// Clients may not forge forwarding fields unless they are trusted
	// proxies (the Rust ExpressGateway appends to whatever the client sends).
	trusted := fw.Trusted != nil && fw.Trusted(fw.Remote)
	prior := ""
	if trusted {
		for _, f := range h.Fields {
			if f.Name == "x-forwarded-for" {
				if prior != "" {
					prior += ", "
				}
				prior += f.Value
			}
		}
	} else {
		h.Fields.Del("forwarded")
	}
	h.Fields.Del("x-forwarded-for")
	xff := fw.Remote.String()
	if prior != "" {
		xff = prior + ", " + xff
	}
	h.Fields.Add("x-forwarded-for", xff)
	if !trusted || !h.Fields.Has("x-forwarded-proto") {
		h.Fields.Set("x-forwarded-proto", fw.Scheme)
	}
	if !trusted || !h.Fields.Has("x-forwarded-host") {
		h.Fields.Set("x-forwarded-host", h.Authority)
	}
	h.Fields.Add("via", ProtoVersion(h.Proto)+" "+fw.Via)
}

// Response rewrites a response head for the client, in place.
func Response(h *frames.Head, proto, via string, altSvc string) {
	stripHopByHop(&h.Fields)
	h.Fields.Add("via", ProtoVersion(proto)+" "+via)
	if altSvc != "" {
		h.Fields.Set("alt-svc", altSvc)
	}
}

// Interim rewrites a 1xx head for the client, in place. RFC 9110 §15.2:
// "A proxy MUST forward 1xx responses unless the proxy itself requested
// the generation of the 1xx response" (the gateway strips Expect, so it
// never does); its hop-by-hop fields stay behind like a final head's.
func Interim(h *frames.Head) { stripHopByHop(&h.Fields) }

// AltSvc formats the Alt-Svc value that advertises an HTTP/3 endpoint.
func AltSvc(h3Port, maxAge int) string {
	return `h3=":` + strconv.Itoa(h3Port) + `"; ma=` + strconv.Itoa(maxAge)
}

// ProtoVersion is the version number of a front protocol ("HTTP/2" →
// "2"), as Via (RFC 9110 §7.6.3) and OpenTelemetry's
// network.protocol.version write it.
func ProtoVersion(p string) string {
	switch p {
	case "HTTP/1.0":
		return "1.0"
	case "HTTP/2":
		return "2"
	case "HTTP/3":
		return "3"
	}
	return "1.1"
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
