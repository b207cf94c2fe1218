package h3

import (
	"bytes"
	"errors"
	"testing"

	"github.com/quic-go/qpack"

	"github.com/expressgateway/expressgateway/frames"
)

// block encodes raw field lines with quic-go's encoder (no validation), so
// tests can build sections our encoder would never produce.
func block(fields ...string) []byte {
	var buf bytes.Buffer
	enc := qpack.NewEncoder(&buf)
	for i := 0; i < len(fields); i += 2 {
		enc.WriteField(qpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

func TestDecodeRequest_Valid(t *testing.T) {
	b := block(":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/up?x=1",
		"content-type", "text/plain", "content-length", "5", "cookie", "a=1", "cookie", "b=2", "te", "trailers")
	h, err := DecodeRequest(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "POST" || h.Scheme != "https" || h.Authority != "example.com" || h.Path != "/up?x=1" || h.ContentLength != 5 || h.Proto != "HTTP/3" {
		t.Fatalf("got %+v", h)
	}
	if h.Fields.Count("cookie") != 2 || h.Fields.Value("content-type") != "text/plain" {
		t.Fatalf("fields %v", h.Fields)
	}
	// host alone stands in for :authority and leaves Fields.
	h, err = DecodeRequest(block(":method", "GET", ":scheme", "https", ":path", "/", "host", "h.example"), nil)
	if err != nil || h.Authority != "h.example" || h.Fields.Has("host") {
		t.Fatalf("host: %+v %v", h, err)
	}
	// host and :authority that differ only in case are the same
	// authority (as over HTTP/2); :authority is kept.
	h, err = DecodeRequest(block(":method", "GET", ":scheme", "https", ":authority", "h.example", ":path", "/", "host", "H.Example"), nil)
	if err != nil || h.Authority != "h.example" {
		t.Fatalf("host in another case: %+v %v", h, err)
	}
	// A plain CONNECT carries :authority only.
	h, err = DecodeRequest(block(":method", "CONNECT", ":authority", "db:5432"), nil)
	if err != nil || h.Method != "CONNECT" || h.Path != "" {
		t.Fatalf("connect: %+v %v", h, err)
	}
}

func TestDecodeRequest_UnderscorePolicies(t *testing.T) {
	b := block(":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/", "x-a", "1", "x_user", "admin", "b", "2")
	if _, err := DecodeRequest(b, &Limits{Underscore: frames.UnderscoreReject}); !errors.Is(err, errUnderscore) {
		t.Fatalf("reject: %v", err)
	}
	h, err := DecodeRequest(b, &Limits{Underscore: frames.UnderscoreDrop})
	if err != nil || h.Fields.Has("x_user") || h.Fields.Value("x-a") != "1" || h.Fields.Value("b") != "2" {
		t.Fatalf("drop: %v %v", h, err)
	}
	h, err = DecodeRequest(b, &Limits{Underscore: frames.UnderscoreAllow})
	if err != nil || h.Fields.Value("x_user") != "admin" {
		t.Fatalf("allow: %v %v", h, err)
	}
}

func TestDecodeRequest_RejectsMalformed(t *testing.T) {
	base := []string{":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name   string
		fields []string
		want   error
	}{
		{"no method", []string{":scheme", "https", ":authority", "a", ":path", "/"}, errPseudoMissing},
		{"no path", []string{":method", "GET", ":scheme", "https", ":authority", "a"}, errPseudoMissing},
		{"empty path", []string{":method", "GET", ":scheme", "https", ":authority", "a", ":path", ""}, errPath},
		{"relative path", []string{":method", "GET", ":scheme", "https", ":authority", "a", ":path", "x"}, errPath},
		{"pseudo after regular", []string{":method", "GET", "accept", "*/*", ":scheme", "https", ":authority", "a", ":path", "/"}, errPseudoAfterRegular},
		{"duplicate path", with(":path", "/x"), errPseudoDuplicate},
		{"duplicate method", []string{":method", "GET", ":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/"}, errPseudoDuplicate},
		{"unknown pseudo", []string{":method", "GET", ":foo", "1", ":scheme", "https", ":authority", "a", ":path", "/"}, errPseudoUnknown},
		{"response pseudo", []string{":status", "200", ":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/"}, errPseudoUnknown},
		{"uppercase name", with("Accept", "x"), errFieldName},
		{"space in name", with("a b", "x"), errFieldName},
		{"CR in value", with("x", "a\rb"), errFieldValue},
		{"LF in value", with("x", "a\nb"), errFieldValue},
		{"NUL in value", with("x", "a\x00b"), errFieldValue},
		{"leading space", with("x", " a"), errFieldValue},
		{"connection", with("connection", "close"), errConnectionSpecific},
		{"transfer-encoding", with("transfer-encoding", "chunked"), errConnectionSpecific},
		{"upgrade", with("upgrade", "websocket"), errConnectionSpecific},
		{"te gzip", with("te", "gzip"), errTE},
		{"bad content-length", with("content-length", "1x"), errContentLength},
		{"signed content-length", with("content-length", "+1"), errContentLength},
		{"conflicting content-length", with("content-length", "1", "content-length", "2"), errContentLength},
		{"host mismatch", with("host", "b"), errHostMismatch},
		{"userinfo", []string{":method", "GET", ":scheme", "https", ":authority", "u@a", ":path", "/"}, errAuthority},
		{"connect with path", []string{":method", "CONNECT", ":authority", "a", ":path", "/"}, errPseudoMissing},
		{"protocol without connect", with(":protocol", "websocket"), errPseudoUnknown},
		{"underscore", with("x_user", "admin"), errUnderscore},
		{"underscore then malformed", with("x_user", "admin", "x", "a\rb"), errFieldValue},
		{"underscore on CONNECT", []string{":method", "CONNECT", ":authority", "a", "x_user", "admin"}, errUnderscore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest(block(tt.fields...), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			var se *StreamError
			if !errors.As(err, &se) || se.Code != ErrCodeMessageError || se.Status != 400 {
				t.Fatalf("not a message error: %v", err)
			}
		})
	}
}

// A QPACK bomb: each one-byte static reference (index 31, "accept-encoding:
// gzip, deflate, br") decodes to a 64-unit field line. A 2 KiB block would
// expand to 128 KiB; decoding stops at the cap with 431.
func TestDecodeRequest_QPACKBombStopsAtTheCap(t *testing.T) {
	b := block(":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/")
	for range 2048 {
		b = append(b, 0xc0|31)
	}
	_, err := DecodeRequest(b, &Limits{MaxSize: 64 << 10, MaxFields: 1 << 20})
	if !errors.Is(err, ErrFieldSectionTooLarge) {
		t.Fatalf("err %v", err)
	}
	var se *StreamError
	if !errors.As(err, &se) || se.Status != 431 || se.Code != ErrCodeExcessiveLoad {
		t.Fatalf("verdict %+v", se)
	}
	// The same block under the default field-count cap trips that cap first.
	if _, err := DecodeRequest(b, nil); !errors.Is(err, ErrTooManyFields) {
		t.Fatalf("count cap: %v", err)
	}
}

// With our dynamic table capacity at 0, any dynamic reference is a
// connection error (RFC 9204 §2.2.3, §4.5.1.1).
func TestDecodeRequest_DynamicTableReferenceFailsTheConnection(t *testing.T) {
	for name, b := range map[string][]byte{
		"required insert count": {0x01, 0x00, 0xc0 | 17},
		"dynamic indexed":       {0x00, 0x00, 0x80},
		"dynamic name ref":      {0x00, 0x00, 0x40, 0x01, 'x'},
		"truncated string":      {0x00, 0x00, 0x5f, 0x1d, 0x05, 'a'},
	} {
		_, err := DecodeRequest(b, nil)
		var ce *ConnError
		if !errors.As(err, &ce) || ce.Code != ErrCodeQPACKDecompressionFailed {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestDecodeResponseAndTrailers(t *testing.T) {
	h, err := DecodeResponse(block(":status", "204", "x-a", "1"), nil)
	if err != nil || h.Status != 204 || h.Fields.Value("x-a") != "1" {
		t.Fatalf("%+v %v", h, err)
	}
	for name, fs := range map[string][]string{
		"no status":  {"x", "1"},
		"bad status": {":status", "20"},
		"status 600": {":status", "600"},
		"two status": {":status", "200", ":status", "200"},
		"method":     {":status", "200", ":method", "GET"},
	} {
		if _, err := DecodeResponse(block(fs...), nil); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	tr, err := DecodeTrailers(block("grpc-status", "0", "x-sum", "abc"), nil)
	if err != nil || tr.Value("x-sum") != "abc" {
		t.Fatalf("%v %v", tr, err)
	}
	if _, err := DecodeTrailers(block(":status", "200"), nil); !errors.Is(err, errPseudoInTrailers) {
		t.Fatalf("pseudo in trailers: %v", err)
	}
}

func TestEncoder_RoundTrip(t *testing.T) {
	e := NewEncoder()
	req := &frames.Head{Method: "PUT", Scheme: "https", Authority: "x.example", Path: "/a", ContentLength: 3,
		Fields: frames.Fields{{Name: "x-a", Value: "1"}, {Name: "connection", Value: "close"}, {Name: "content-length", Value: "3"}, {Name: "te", Value: "trailers"}}}
	got, err := DecodeRequest(e.AppendRequest(nil, req), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.Authority != "x.example" || got.Path != "/a" || got.ContentLength != 3 || got.Fields.Has("connection") || got.Fields.Value("x-a") != "1" || got.Fields.Count("content-length") != 1 {
		t.Fatalf("%+v", got)
	}
	resp := &frames.Head{Status: 200, ContentLength: -1, Fields: frames.Fields{{Name: "transfer-encoding", Value: "chunked"}, {Name: "x-b", Value: "2"}}}
	gotR, err := DecodeResponse(e.AppendResponse(nil, resp), nil)
	if err != nil || gotR.Status != 200 || gotR.Fields.Has("transfer-encoding") || gotR.ContentLength != -1 {
		t.Fatalf("%+v %v", gotR, err)
	}
	tr, err := DecodeTrailers(e.AppendTrailers(nil, frames.Fields{{Name: "x-sum", Value: "9"}}), nil)
	if err != nil || tr.Value("x-sum") != "9" {
		t.Fatalf("%v %v", tr, err)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	blk := block(":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/index.html",
		"user-agent", "bench", "accept", "*/*", "accept-encoding", "gzip, deflate, br")
	b.ReportAllocs()
	for b.Loop() {
		DecodeRequest(blk, nil)
	}
}

func TestDecodeTrailers_UnderscorePolicies(t *testing.T) {
	b := block("x-sum", "1", "x_user", "admin")
	if _, err := DecodeTrailers(b, nil); !errors.Is(err, errUnderscore) {
		t.Fatalf("default (reject): %v", err)
	}
	fs, err := DecodeTrailers(b, &Limits{Underscore: frames.UnderscoreDrop})
	if err != nil || fs.Has("x_user") || fs.Value("x-sum") != "1" {
		t.Fatalf("drop: %v %v", fs, err)
	}
	fs, err = DecodeTrailers(b, &Limits{Underscore: frames.UnderscoreAllow})
	if err != nil || fs.Value("x_user") != "admin" {
		t.Fatalf("allow: %v %v", fs, err)
	}
}
