package h2

import (
	"errors"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
)

func hf(kv ...string) []hpack.HeaderField {
	var out []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

var base = []string{":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/a?b"}

func TestDecodeRequest_RejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []string
		status int // 0: stream error
	}{
		{"uppercase name", append(base[:8:8], "X-A", "1"), 0},
		{"connection", append(base[:8:8], "connection", "close"), 0},
		{"keep-alive", append(base[:8:8], "keep-alive", "1"), 0},
		{"proxy-connection", append(base[:8:8], "proxy-connection", "1"), 0},
		{"transfer-encoding", append(base[:8:8], "transfer-encoding", "chunked"), 0},
		{"upgrade", append(base[:8:8], "upgrade", "h2c"), 0},
		{"te gzip", append(base[:8:8], "te", "gzip"), 0},
		{"cr in value", append(base[:8:8], "x-a", "a\rb"), 0},
		{"lf in value", append(base[:8:8], "x-a", "a\nb"), 0},
		{"nul in value", append(base[:8:8], "x-a", "a\x00b"), 0},
		{"leading space", append(base[:8:8], "x-a", " a"), 0},
		{"pseudo after regular", []string{":method", "GET", "x-a", "1", ":scheme", "http", ":path", "/"}, 0},
		{"duplicate method", append(base[:8:8], ":method", "GET"), 0},
		{"status in request", append(base[:8:8], ":status", "200"), 0},
		{"protocol", append(base[:8:8], ":protocol", "websocket"), 0},
		{"missing path", []string{":method", "GET", ":scheme", "http"}, 0},
		{"empty path", []string{":method", "GET", ":scheme", "http", ":path", ""}, 0},
		{"space in path", []string{":method", "GET", ":scheme", "http", ":path", "/a b"}, 0},
		{"bad content-length", append(base[:8:8], "content-length", "1x"), 0},
		{"two content-lengths", append(base[:8:8], "content-length", "1", "content-length", "2"), 0},
		{"host mismatch", append(base[:8:8], "host", "evil.com"), 400},
		{"userinfo", []string{":method", "GET", ":scheme", "http", ":authority", "u@h", ":path", "/"}, 400},
		{"underscore", append(base[:8:8], "x_user", "admin"), 400},
		{"underscore then malformed", append(base[:8:8], "x_user", "admin", "x-a", "a\rb"), 0},
		{"malformed underscore field", append(base[:8:8], "x_user", "a\nb"), 0},
		{"underscore on CONNECT", []string{":method", "CONNECT", ":authority", "db:5432", "x_user", "admin"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest(1, hf(tc.fields...), frames.UnderscoreReject, false)
			var se *StreamError
			var re *RequestError
			switch {
			case tc.status == 0 && !errors.As(err, &se):
				t.Fatalf("got %v, want a stream error", err)
			case tc.status == 0 && se.Code != ErrCodeProtocol:
				t.Fatalf("code %v", se.Code)
			case tc.status != 0 && (!errors.As(err, &re) || re.Status != tc.status):
				t.Fatalf("got %v, want status %d", err, tc.status)
			}
		})
	}
}

func TestDecodeRequest_BuildsTheNeutralHead(t *testing.T) {
	h, err := DecodeRequest(1, hf(append(base[:8:8], "cookie", "a=1", "cookie", "b=2", "content-length", "3", "te", "trailers", "host", "EXAMPLE.com")...), frames.UnderscoreReject, false)
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "GET" || h.Authority != "example.com" || h.Path != "/a?b" || h.ContentLength != 3 || h.Proto != "HTTP/2" {
		t.Fatalf("%+v", h)
	}
	if h.Fields.Value("cookie") != "a=1; b=2" || h.Fields.Has("host") || h.Fields.Has("content-length") {
		t.Fatalf("fields %v", h.Fields)
	}
}

func TestWriter_EncodesWhatTheDecoderAccepts(t *testing.T) {
	h, err := DecodeRequest(1, hf(append(base[:8:8], "x-a", "1", "content-length", "5")...), frames.UnderscoreReject, false)
	if err != nil {
		t.Fatal(err)
	}
	h.Fields.Add("connection", "close") // never encoded
	c := NewConn(RoleClient, nil, nil, DefaultSettings())
	w := NewWriter(c)
	fields, err := hpack.NewDecoder(4096, nil).DecodeFull(w.EncodeRequest(h, "http"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRequest(1, fields, frames.UnderscoreReject, false)
	if err != nil {
		t.Fatal(err)
	}
	if back.Scheme != "http" || back.ContentLength != 5 || back.Fields.Value("x-a") != "1" || back.Fields.Has("connection") {
		t.Fatalf("%+v", back)
	}
}

func TestDecodeRequest_UnderscorePolicies(t *testing.T) {
	in := hf(append(base[:8:8], "x-a", "1", "x_user", "admin", "b", "2")...)
	if _, err := DecodeRequest(1, in, frames.UnderscoreReject, false); err == nil {
		t.Fatal("reject: accepted")
	}
	h, err := DecodeRequest(1, in, frames.UnderscoreDrop, false)
	if err != nil || h.Fields.Has("x_user") || h.Fields.Value("x-a") != "1" || h.Fields.Value("b") != "2" {
		t.Fatalf("drop: %v %v", h, err)
	}
	h, err = DecodeRequest(1, in, frames.UnderscoreAllow, false)
	if err != nil || h.Fields.Value("x_user") != "admin" {
		t.Fatalf("allow: %v %v", h, err)
	}
}

func TestDecodeTrailers_UnderscorePolicies(t *testing.T) {
	in := hf("x-sum", "1", "x_user", "admin")
	var se *StreamError
	if _, err := DecodeTrailers(1, in, frames.UnderscoreReject); !errors.As(err, &se) || se.Code != ErrCodeProtocol {
		t.Fatalf("reject: %v, want a stream reset", err)
	}
	fs, err := DecodeTrailers(1, in, frames.UnderscoreDrop)
	if err != nil || fs.Has("x_user") || fs.Value("x-sum") != "1" {
		t.Fatalf("drop: %v %v", fs, err)
	}
	if _, err := DecodeTrailers(1, hf("x_user", "a\nb"), frames.UnderscoreDrop); err == nil {
		t.Fatal("drop: a malformed dropped field passed")
	}
	fs, err = DecodeTrailers(1, in, frames.UnderscoreAllow)
	if err != nil || fs.Value("x_user") != "admin" {
		t.Fatalf("allow: %v %v", fs, err)
	}
}

// With SETTINGS_ENABLE_CONNECT_PROTOCOL announced, an extended CONNECT
// (RFC 8441 §4) is a request carrying :protocol, :scheme and :path; a
// :protocol anywhere else, or one missing its :path, stays malformed.
func TestDecodeRequest_ExtendedConnect(t *testing.T) {
	ws := []string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "example.com", ":path", "/chat"}
	h, err := DecodeRequest(1, hf(append(ws, "sec-websocket-version", "13")...), frames.UnderscoreReject, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "CONNECT" || h.Protocol != "websocket" || h.Path != "/chat" || h.Scheme != "https" || h.Authority != "example.com" {
		t.Fatalf("head %+v", h)
	}
	if _, err := DecodeRequest(1, hf(ws...), frames.UnderscoreReject, false); err == nil {
		t.Fatal(":protocol accepted without the setting")
	}
	for name, fields := range map[string][]string{
		"protocol on GET": append(base[:8:8], ":protocol", "websocket"),
		"no path":         ws[:8],
		"no scheme":       {":method", "CONNECT", ":protocol", "websocket", ":authority", "example.com", ":path", "/chat"},
		"empty protocol":  {":method", "CONNECT", ":protocol", "", ":scheme", "https", ":authority", "example.com", ":path", "/"},
		"duplicate":       append(ws[:10:10], ":protocol", "websocket"),
		"protocol after":  {":method", "CONNECT", ":scheme", "https", ":authority", "a", ":path", "/", "x-a", "1", ":protocol", "websocket"},
	} {
		var se *StreamError
		if _, err := DecodeRequest(1, hf(fields...), frames.UnderscoreReject, true); !errors.As(err, &se) || se.Code != ErrCodeProtocol {
			t.Errorf("%s: got %v, want a stream error", name, err)
		}
	}
	// A plain CONNECT is still the RFC 9113 §8.5 form.
	if h, err := DecodeRequest(1, hf(":method", "CONNECT", ":authority", "db:5432"), frames.UnderscoreReject, true); err != nil || h.Protocol != "" {
		t.Fatalf("plain CONNECT: %v %+v", err, h)
	}
}

// An extended CONNECT is encoded with :protocol, :scheme and :path (RFC
// 8441 §4) and decodes back to the same head; a plain CONNECT keeps
// neither :scheme nor :path.
func TestEncodeRequest_ExtendedConnectRoundTrips(t *testing.T) {
	w := NewWriter(NewConn(RoleClient, nil, nil, DefaultSettings()))
	dec := hpack.NewDecoder(4096, nil) // the encoder's table carries over
	h := &frames.Head{Method: "CONNECT", Protocol: "websocket", Authority: "example.com", Path: "/chat", ContentLength: -1}
	fields, err := dec.DecodeFull(w.EncodeRequest(h, "https"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRequest(1, fields, frames.UnderscoreReject, true)
	if err != nil {
		t.Fatal(err)
	}
	if back.Method != "CONNECT" || back.Protocol != "websocket" || back.Scheme != "https" || back.Path != "/chat" || back.Authority != "example.com" {
		t.Fatalf("round trip: %+v", back)
	}
	plain, err := dec.DecodeFull(w.EncodeRequest(&frames.Head{Method: "CONNECT", Authority: "db:5432", ContentLength: -1}, "https"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range plain {
		if f.Name == ":scheme" || f.Name == ":path" || f.Name == ":protocol" {
			t.Fatalf("plain CONNECT carries %s", f.Name)
		}
	}
}
