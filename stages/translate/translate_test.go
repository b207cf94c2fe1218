package translate

import (
	"net/netip"
	"testing"

	"github.com/expressgateway/expressgateway/frames"
)

func TestRequest_StripsHopByHopAndNamedFields(t *testing.T) {
	h := &frames.Head{Method: "GET", Path: "/", Authority: "example.com", Proto: "HTTP/1.1", Fields: frames.Fields{
		{Name: "connection", Value: "X-Secret, keep-alive"}, {Name: "x-secret", Value: "1"}, {Name: "keep-alive", Value: "5"},
		{Name: "te", Value: "trailers, gzip"}, {Name: "upgrade", Value: "h2c"}, {Name: "proxy-connection", Value: "keep-alive"},
		{Name: "accept", Value: "*/*"}, {Name: "expect", Value: "100-continue"},
	}}
	Request(h, &Forwarding{Remote: netip.MustParseAddr("192.0.2.7"), Scheme: "https", Via: "expressgateway"})
	for _, gone := range []string{"connection", "x-secret", "keep-alive", "upgrade", "proxy-connection", "expect"} {
		if h.Fields.Has(gone) {
			t.Errorf("%s survived", gone)
		}
	}
	if h.Fields.Value("te") != "trailers" || h.Fields.Value("accept") != "*/*" {
		t.Errorf("te/accept wrong: %v", h.Fields)
	}
	if h.Fields.Value("x-forwarded-for") != "192.0.2.7" || h.Fields.Value("x-forwarded-proto") != "https" ||
		h.Fields.Value("x-forwarded-host") != "example.com" || h.Fields.Value("via") != "1.1 expressgateway" {
		t.Errorf("forwarding fields wrong: %v", h.Fields)
	}
}

func TestRequest_XFFKeptOnlyFromTrustedProxies(t *testing.T) {
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	fw := &Forwarding{Scheme: "http", Via: "eg", Trusted: trusted.Contains}
	mk := func() *frames.Head {
		return &frames.Head{Method: "GET", Authority: "a", Fields: frames.Fields{{Name: "x-forwarded-for", Value: "1.2.3.4"}, {Name: "forwarded", Value: "for=1.2.3.4"}}}
	}
	h := mk()
	fw.Remote = netip.MustParseAddr("10.1.1.1")
	Request(h, fw)
	if got := h.Fields.Value("x-forwarded-for"); got != "1.2.3.4, 10.1.1.1" {
		t.Errorf("trusted: xff %q", got)
	}
	h = mk()
	fw.Remote = netip.MustParseAddr("203.0.113.9")
	Request(h, fw)
	if got := h.Fields.Value("x-forwarded-for"); got != "203.0.113.9" || h.Fields.Has("forwarded") {
		t.Errorf("untrusted: spoofed xff kept: %v", h.Fields)
	}
}

func TestResponse_AltSvcAndVia(t *testing.T) {
	h := &frames.Head{Status: 200, Fields: frames.Fields{{Name: "alt-svc", Value: "h2=\":1\""}, {Name: "transfer-encoding", Value: "chunked"}}}
	Response(h, "HTTP/2", "eg", AltSvc(443, 3600))
	if h.Fields.Value("alt-svc") != `h3=":443"; ma=3600` || h.Fields.Has("transfer-encoding") || h.Fields.Value("via") != "2 eg" {
		t.Fatalf("got %v", h.Fields)
	}
}

func TestRequest_KeepsTransferCodingsOtherThanChunked(t *testing.T) {
	fw := &Forwarding{Remote: netip.MustParseAddr("192.0.2.7"), Scheme: "http", Via: "eg"}
	h := &frames.Head{Method: "POST", Path: "/", Authority: "a", Proto: "HTTP/1.1", ContentLength: -1, Fields: frames.Fields{
		{Name: "transfer-encoding", Value: "gzip"}, {Name: "transfer-encoding", Value: "x-c;a=b, Chunked"},
	}}
	Request(h, fw)
	if got := h.Fields.Value("transfer-encoding"); got != "gzip, x-c;a=b" {
		t.Fatalf("transfer-encoding %q, want the codings before chunked", got)
	}
	h = &frames.Head{Method: "POST", Path: "/", Authority: "a", Proto: "HTTP/1.1", ContentLength: -1, Fields: frames.Fields{
		{Name: "transfer-encoding", Value: "chunked"},
	}}
	Request(h, fw)
	if h.Fields.Has("transfer-encoding") {
		t.Fatalf("plain chunked kept: %v", h.Fields)
	}
}
