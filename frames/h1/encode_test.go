package h1

import (
	"testing"

	"github.com/expressgateway/expressgateway/frames"
)

func TestAppendRequestHead_Exact(t *testing.T) {
	h := &frames.Head{Method: "POST", Path: "/up?x=1", Authority: "a.example",
		Fields: fl("user-agent", "t", "host", "stale", "content-length", "7", "transfer-encoding", "chunked", "x", "")}
	tests := []struct {
		name string
		h    *frames.Head
		body Body
		want string
	}{
		{"length", h, Body{BodyLength, 12}, "POST /up?x=1 HTTP/1.1\r\nhost: a.example\r\nuser-agent: t\r\nx: \r\ncontent-length: 12\r\n\r\n"},
		{"length zero", h, Body{BodyLength, 0}, "POST /up?x=1 HTTP/1.1\r\nhost: a.example\r\nuser-agent: t\r\nx: \r\ncontent-length: 0\r\n\r\n"},
		{"chunked", h, Body{Kind: BodyChunked}, "POST /up?x=1 HTTP/1.1\r\nhost: a.example\r\nuser-agent: t\r\nx: \r\ntransfer-encoding: chunked\r\n\r\n"},
		{"unknown length goes chunked", h, Body{Kind: BodyClose}, "POST /up?x=1 HTTP/1.1\r\nhost: a.example\r\nuser-agent: t\r\nx: \r\ntransfer-encoding: chunked\r\n\r\n"},
		{"codings kept before chunked", &frames.Head{Method: "POST", Path: "/", Authority: "a", Fields: fl("transfer-encoding", "gzip", "transfer-encoding", "x-c;a=b, Chunked")},
			Body{Kind: BodyChunked}, "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, x-c;a=b, chunked\r\n\r\n"},
		{"chunked last whatever the fields say", &frames.Head{Method: "POST", Path: "/", Authority: "a", Fields: fl("transfer-encoding", "chunked, gzip")},
			Body{Kind: BodyChunked}, "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n"},
		{"none", h, Body{}, "POST /up?x=1 HTTP/1.1\r\nhost: a.example\r\nuser-agent: t\r\nx: \r\n\r\n"},
		{"connect", &frames.Head{Method: "CONNECT", Authority: "a:443"}, Body{}, "CONNECT a:443 HTTP/1.1\r\nhost: a:443\r\n\r\n"},
		{"empty path", &frames.Head{Method: "GET", Authority: "a"}, Body{}, "GET / HTTP/1.1\r\nhost: a\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendRequestHead([]byte("prefix"), tt.h, tt.body)
			if string(got) != "prefix"+tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if n := RequestHeadLen(tt.h, tt.body); n != len(tt.want) {
				t.Fatalf("RequestHeadLen = %d, want %d", n, len(tt.want))
			}
		})
	}
}

func TestAppendResponseHead_Exact(t *testing.T) {
	fs := fl("content-type", "text/plain", "content-length", "3", "transfer-encoding", "chunked")
	tests := []struct {
		name      string
		h         *frames.Head
		body      Body
		keepAlive bool
		want      string
	}{
		{"length", &frames.Head{Status: 200, Fields: fs}, Body{BodyLength, 5}, true,
			"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"},
		{"chunked close", &frames.Head{Status: 404, Fields: fs}, Body{Kind: BodyChunked}, false,
			"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"},
		{"close-delimited forces close", &frames.Head{Status: 200}, Body{Kind: BodyClose}, true,
			"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"},
		{"close already said", &frames.Head{Status: 200, Fields: fl("connection", "Close")}, Body{BodyLength, 0}, false,
			"HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n"},
		{"HEAD metadata", &frames.Head{Status: 200, ContentLength: 1000}, Body{}, true,
			"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"},
		{"none unknown length", &frames.Head{Status: 304, ContentLength: -1}, Body{}, true,
			"HTTP/1.1 304 Not Modified\r\n\r\n"},
		{"204 never framed", &frames.Head{Status: 204, ContentLength: 5}, Body{BodyLength, 5}, true,
			"HTTP/1.1 204 No Content\r\n\r\n"},
		{"1xx never framed", &frames.Head{Status: 100}, Body{Kind: BodyChunked}, true,
			"HTTP/1.1 100 Continue\r\n\r\n"},
		{"unregistered code", &frames.Head{Status: 599}, Body{BodyLength, 0}, true,
			"HTTP/1.1 599 \r\ncontent-length: 0\r\n\r\n"},
		{"invalid code", &frames.Head{Status: 42}, Body{BodyLength, 0}, true,
			"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendResponseHead(nil, tt.h, tt.body, tt.keepAlive)
			if string(got) != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if n := ResponseHeadLen(tt.h, tt.body, tt.keepAlive); n != len(tt.want) {
				t.Fatalf("ResponseHeadLen = %d, want %d", n, len(tt.want))
			}
		})
	}
}

func TestAppendChunk(t *testing.T) {
	if got := AppendChunk([]byte("x"), nil); string(got) != "x" {
		t.Fatalf("empty chunk wrote %q: it would end the body", got)
	}
	for _, n := range []int{1, 15, 16, 255, 256, 4096, 65537} {
		data := make([]byte, n)
		got := AppendChunk(nil, data)
		if len(got) != ChunkLen(n) {
			t.Fatalf("ChunkLen(%d) = %d, wrote %d", n, ChunkLen(n), len(got))
		}
		var d ChunkedDecoder
		p, _, err := d.Decode(got)
		if err != nil || len(p) != n {
			t.Fatalf("n %d: decoded %d, %v", n, len(p), err)
		}
	}
	if ChunkLen(0) != 0 {
		t.Fatal("ChunkLen(0) must be 0: AppendChunk writes nothing")
	}
	if got := string(AppendChunk(nil, []byte("hello world"))); got != "b\r\nhello world\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestAppendLastChunk(t *testing.T) {
	got := AppendLastChunk(nil, fl("grpc-status", "0", "content-length", "5", "x", "y"))
	if string(got) != "0\r\ngrpc-status: 0\r\nx: y\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	if got := AppendLastChunk(nil, nil); string(got) != "0\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestRequest_RoundTrip(t *testing.T) {
	heads := []struct {
		h    *frames.Head
		body Body
	}{
		{&frames.Head{Method: "GET", Path: "/", Authority: "a", Fields: fl("accept", "*/*")}, Body{}},
		{&frames.Head{Method: "POST", Path: "/x?y", Authority: "a:8080", Fields: fl("a", "1", "a", "2")}, Body{BodyLength, 9}},
		{&frames.Head{Method: "PUT", Path: "/x", Authority: "[::1]:80"}, Body{Kind: BodyChunked}},
		{&frames.Head{Method: "CONNECT", Authority: "a:443"}, Body{}},
		{&frames.Head{Method: "OPTIONS", Path: "*", Authority: "a"}, Body{}},
	}
	for _, tt := range heads {
		enc := AppendRequestHead(nil, tt.h, tt.body)
		req, n, err := ParseRequest(enc, nil)
		if err != nil || n != len(enc) {
			t.Fatalf("%q: n %d err %v", enc, n, err)
		}
		h := req.Head
		if h.Method != tt.h.Method || h.Path != tt.h.Path || h.Authority != tt.h.Authority || req.Body != tt.body {
			t.Fatalf("%q: got %+v %+v", enc, h, req.Body)
		}
		// Fields come back in order, followed by the framing field.
		for i, f := range tt.h.Fields {
			if h.Fields[i] != f {
				t.Fatalf("%q: fields %q", enc, h.Fields)
			}
		}
		if again := AppendRequestHead(nil, h, req.Body); string(again) != string(enc) {
			t.Fatalf("re-encode differs:\n%q\n%q", enc, again)
		}
	}
}

func TestParsedRequests_EncodeStably(t *testing.T) {
	for _, in := range validRequests {
		req, _, err := ParseRequest([]byte(in), nil)
		if err != nil {
			t.Fatal(err)
		}
		if req.Head.Authority == "" {
			continue // HTTP/1.0 without Host: nothing to write as host
		}
		enc := AppendRequestHead(nil, req.Head, req.Body)
		req2, _, err := ParseRequest(enc, nil)
		if err != nil {
			t.Fatalf("%q: %v", enc, err)
		}
		if enc2 := AppendRequestHead(nil, req2.Head, req2.Body); string(enc2) != string(enc) {
			t.Fatalf("not stable:\n%q\n%q", enc, enc2)
		}
	}
}

func TestResponse_RoundTrip(t *testing.T) {
	tests := []struct {
		h         *frames.Head
		body      Body
		keepAlive bool
		method    string
	}{
		{&frames.Head{Status: 200, Fields: fl("content-type", "text/html")}, Body{BodyLength, 10}, true, "GET"},
		{&frames.Head{Status: 200}, Body{Kind: BodyChunked}, false, "GET"},
		{&frames.Head{Status: 200}, Body{Kind: BodyClose}, false, "GET"},
		{&frames.Head{Status: 200, ContentLength: 77}, Body{}, true, "HEAD"},
		{&frames.Head{Status: 101, Fields: fl("upgrade", "websocket")}, Body{}, true, "GET"},
	}
	for _, tt := range tests {
		enc := AppendResponseHead(nil, tt.h, tt.body, tt.keepAlive)
		resp, n, err := ParseResponse(enc, tt.method, nil)
		if err != nil || n != len(enc) {
			t.Fatalf("%q: n %d err %v", enc, n, err)
		}
		if resp.Head.Status != tt.h.Status || resp.Body != tt.body || resp.KeepAlive != tt.keepAlive {
			t.Fatalf("%q: got %+v keepAlive %v", enc, resp.Body, resp.KeepAlive)
		}
		if again := AppendResponseHead(nil, resp.Head, resp.Body, resp.KeepAlive); string(again) != string(enc) {
			t.Fatalf("re-encode differs:\n%q\n%q", enc, again)
		}
	}
}

func BenchmarkAppendRequestHead(b *testing.B) {
	req, _, err := ParseRequest([]byte(browserGET), nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequestHead(buf[:0], req.Head, req.Body)
	}
}
