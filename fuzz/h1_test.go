package fuzz

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
)

// limitsFor picks parser limits from the fuzzer's flags byte, so that the
// small caps and the policies get exercised too.
func limitsFor(flags uint8) *h1.Limits {
	lim := &h1.Limits{
		Underscore: h1.UnderscorePolicy(flags % 3),
		StrictTE:   flags&4 != 0,
	}
	if flags&8 != 0 {
		lim.MaxHeadBytes, lim.MaxFields, lim.MaxURIBytes = 256, 4, 32
	}
	return lim
}

// checkErr asserts that a parser failed with ErrShort or a typed *Error.
func checkErr(t *testing.T, err error, wantStatus func(int) bool) {
	t.Helper()
	if err == h1.ErrShort {
		return
	}
	var e *h1.Error
	if !errors.As(err, &e) || !wantStatus(e.Status) || !strings.HasPrefix(e.Token, "h1_") {
		t.Fatalf("untyped or unexpected error %v", err)
	}
}

// checkFields asserts the decoder's promise to every encoder: lower-case
// token names, no CR, LF or NUL anywhere, no leading or trailing OWS.
func checkFields(t *testing.T, fs frames.Fields) {
	t.Helper()
	for _, f := range fs {
		if f.Name == "" || f.Name != strings.ToLower(f.Name) || strings.ContainsAny(f.Name, " \t:\r\n\x00") {
			t.Fatalf("bad name %q", f.Name)
		}
		if strings.ContainsAny(f.Value, "\r\n\x00") || strings.TrimLeft(f.Value, " \t") != f.Value ||
			strings.TrimRight(f.Value, " \t") != f.Value {
			t.Fatalf("bad value %q", f.Value)
		}
	}
}

func clean(t *testing.T, what, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\r\n\x00 ") {
		t.Fatalf("%s %q holds CR, LF, NUL or SP", what, s)
	}
}

// nonFraming drops the fields the encoders own, for comparing field lists
// across an encode (the framing field moves to the end).
func nonFraming(fs frames.Fields) frames.Fields {
	var out frames.Fields
	for _, f := range fs {
		if f.Name != "content-length" && f.Name != "transfer-encoding" {
			out = append(out, f)
		}
	}
	return out
}

// codings lists the transfer codings other than chunked, lower-cased.
func codings(fs frames.Fields) string {
	var out []string
	fs.EachToken("transfer-encoding", func(t string) bool {
		if t = strings.ToLower(t); t != "chunked" {
			out = append(out, t)
		}
		return true
	})
	return strings.Join(out, ",")
}

func without(fs frames.Fields, name string) frames.Fields {
	out := append(frames.Fields(nil), fs...)
	out.Del(name)
	return out
}

func sameFields(a, b frames.Fields) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// roundTripLimits re-parses encoded heads: the encoder adds a space after
// each colon, so allow the head some growth, and keep allowed underscores.
var roundTripLimits = &h1.Limits{Underscore: h1.UnderscoreAllow, MaxHeadBytes: 2 * h1.DefaultMaxHeadBytes, MaxFields: 2 * h1.DefaultMaxFields}

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /search?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nAccept-Encoding: gzip, br\r\nCookie: a=b\r\n\r\n",
	"\r\nPOST /x HTTP/1.1\r\nHost: a:8080\r\nContent-Length: 5, 5\r\nExpect: 100-continue\r\n\r\nhello",
	"POST /x HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
	"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET HTTP://a.example/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\nX_Y: 1\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n",
	// Smuggling and malformed classics.
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n Content-Length: 6\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
}

func FuzzH1Request(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(2|4))
		f.Add([]byte(s), uint8(8))
	}
	// Seeds from the encoder.
	for _, body := range []h1.Body{{}, {Kind: h1.BodyLength, Length: 7}, {Kind: h1.BodyChunked}} {
		h := &frames.Head{Method: "PUT", Path: "/a?b=c", Authority: "a.example:8443",
			Fields: frames.Fields{{Name: "x-a", Value: "1"}, {Name: "cookie", Value: "k=v; k2=v2"}}}
		f.Add(h1.AppendRequestHead(nil, h, body), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		lim := limitsFor(flags)
		req, n, err := h1.ParseRequest(data, lim)
		if err != nil {
			if n != 0 || req.Head != nil {
				t.Fatalf("n %d head %v with %v", n, req.Head, err)
			}
			checkErr(t, err, func(s int) bool { return s == 400 || s == 414 || s == 431 || s == 501 || s == 505 })
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		if _, _, err := h1.ParseRequest(data[:n-1], lim); err != h1.ErrShort {
			t.Fatalf("strict prefix of a valid head: %v", err)
		}
		h := req.Head
		clean(t, "method", h.Method)
		clean(t, "path", h.Path)
		clean(t, "authority", h.Authority)
		checkFields(t, h.Fields)
		if h.Fields.Has("host") {
			t.Fatal("host left in fields")
		}
		if h.Fields.Has("content-length") && h.Fields.Has("transfer-encoding") {
			t.Fatal("both framing fields accepted")
		}
		switch req.Body.Kind {
		case h1.BodyLength:
			if h.ContentLength != req.Body.Length || req.Body.Length < 0 {
				t.Fatalf("cl %d body %+v", h.ContentLength, req.Body)
			}
		case h1.BodyChunked, h1.BodyNone:
			if h.ContentLength != -1 {
				t.Fatalf("cl %d body %+v", h.ContentLength, req.Body)
			}
		default:
			t.Fatalf("request body %+v", req.Body)
		}
		if h.Authority == "" {
			return // HTTP/1.0 without Host: there is no host to write
		}

		// decode → encode → decode: the same request, and a fixed point.
		enc := h1.AppendRequestHead(nil, h, req.Body)
		if len(enc) != h1.RequestHeadLen(h, req.Body) {
			t.Fatalf("RequestHeadLen %d, wrote %d", h1.RequestHeadLen(h, req.Body), len(enc))
		}
		req2, n2, err := h1.ParseRequest(enc, roundTripLimits)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-parse of %q: n %d err %v", enc, n2, err)
		}
		h2 := req2.Head
		if h2.Method != h.Method || h2.Path != h.Path || h2.Authority != h.Authority || h2.Scheme != h.Scheme ||
			req2.Body != req.Body || h2.ContentLength != h.ContentLength {
			t.Fatalf("round trip changed the request:\n%+v %+v\n%+v %+v", h, req.Body, h2, req2.Body)
		}
		if !sameFields(nonFraming(h.Fields), nonFraming(h2.Fields)) {
			t.Fatalf("round trip changed the fields:\n%q\n%q", h.Fields, h2.Fields)
		}
		// A transfer coding accepted is forwarded, never dropped.
		if a, b := codings(h.Fields), codings(h2.Fields); a != b {
			t.Fatalf("round trip changed the transfer codings: %q → %q", a, b)
		}
		if h.Proto == "HTTP/1.1" && (req2.KeepAlive != req.KeepAlive || req2.Expect100 != req.Expect100 || req2.Upgrade != req.Upgrade) {
			t.Fatalf("round trip changed connection semantics: %+v vs %+v", req, req2)
		}
		if enc2 := h1.AppendRequestHead(nil, h2, req2.Body); !bytes.Equal(enc, enc2) {
			t.Fatalf("encode not stable:\n%q\n%q", enc, enc2)
		}
	})
}

var responseMethods = []string{"GET", "HEAD", "CONNECT", "POST"}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 Connection established\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	"HTTP/1.1 999 Nope\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
}

func FuzzH1Response(f *testing.F) {
	for _, s := range responseSeeds {
		for m := range responseMethods {
			f.Add([]byte(s), uint8(m))
		}
	}
	for _, body := range []h1.Body{{}, {Kind: h1.BodyLength, Length: 3}, {Kind: h1.BodyChunked}, {Kind: h1.BodyClose}} {
		h := &frames.Head{Status: 200, ContentLength: -1, Fields: frames.Fields{{Name: "set-cookie", Value: "a=1"}, {Name: "server", Value: "t"}}}
		f.Add(h1.AppendResponseHead(nil, h, body, true), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		method := responseMethods[int(sel)%len(responseMethods)]
		lim := limitsFor(sel >> 2)
		resp, n, err := h1.ParseResponse(data, method, lim)
		if err != nil {
			if n != 0 || resp.Head != nil {
				t.Fatalf("n %d head %v with %v", n, resp.Head, err)
			}
			checkErr(t, err, func(s int) bool { return s == 502 })
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		if _, _, err := h1.ParseResponse(data[:n-1], method, lim); err != h1.ErrShort {
			t.Fatalf("strict prefix of a valid head: %v", err)
		}
		h := resp.Head
		checkFields(t, h.Fields)
		if h.Status < 100 || h.Status > 599 {
			t.Fatalf("status %d", h.Status)
		}
		if resp.Body.Kind == h1.BodyClose && resp.KeepAlive {
			t.Fatal("close-delimited body on a kept-alive connection")
		}
		if resp.Body.Kind == h1.BodyLength && resp.Body.Length != h.ContentLength {
			t.Fatalf("cl %d body %+v", h.ContentLength, resp.Body)
		}

		enc := h1.AppendResponseHead(nil, h, resp.Body, resp.KeepAlive)
		if len(enc) != h1.ResponseHeadLen(h, resp.Body, resp.KeepAlive) {
			t.Fatalf("ResponseHeadLen %d, wrote %d", h1.ResponseHeadLen(h, resp.Body, resp.KeepAlive), len(enc))
		}
		resp2, n2, err := h1.ParseResponse(enc, method, roundTripLimits)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-parse of %q: n %d err %v", enc, n2, err)
		}
		if resp2.Head.Status != h.Status || resp2.Body != resp.Body || resp2.KeepAlive != resp.KeepAlive {
			t.Fatalf("round trip changed the response:\n%+v %+v\n%+v %+v", h, resp, resp2.Head, resp2)
		}
		// The encoder adds "connection: close" when the response ends the
		// connection; KeepAlive was compared above.
		if !sameFields(without(nonFraming(h.Fields), "connection"), without(nonFraming(resp2.Head.Fields), "connection")) {
			t.Fatalf("round trip changed the fields:\n%q\n%q", h.Fields, resp2.Head.Fields)
		}
		if enc2 := h1.AppendResponseHead(nil, resp2.Head, resp2.Body, resp2.KeepAlive); !bytes.Equal(enc, enc2) {
			t.Fatalf("encode not stable:\n%q\n%q", enc, enc2)
		}
	})
}

// decodeChunked runs a fresh decoder over in, handing it step new bytes at
// a time, and returns the payload, input consumed and final error (nil
// once done, ErrShort if in ran out).
func decodeChunked(t *testing.T, d *h1.ChunkedDecoder, in []byte, step int) ([]byte, int, error) {
	var data []byte
	consumed, avail := 0, min(step, len(in))
	for !d.Done() {
		buf := in[consumed:avail]
		p, n, err := d.Decode(buf)
		if n < 0 || n > len(buf) || len(p) > n {
			t.Fatalf("n %d, payload %d of %d bytes given", n, len(p), len(buf))
		}
		if len(p) > 0 && &p[0] != &buf[n-len(p)] {
			t.Fatal("payload is not the tail of the consumed input")
		}
		data = append(data, p...)
		consumed += n
		switch {
		case err == h1.ErrShort:
			if n != 0 {
				t.Fatalf("ErrShort with n = %d", n)
			}
			if avail == len(in) {
				return data, consumed, err
			}
			avail = min(avail+step, len(in))
		case err == io.EOF:
			t.Fatal("io.EOF before Done")
		case err != nil:
			return data, consumed, err
		case n == 0 && len(p) == 0:
			t.Fatal("no progress and no error")
		}
	}
	return data, consumed, nil
}

var chunkedSeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"5;a=b;c=\"d\\\"e\"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nGrpc-Status: 0\r\nContent-Length: 5\r\n\r\n",
	"0000000000000000000001\r\nx\r\n0\r\n\r\n",
	"ffffffffffffffff\r\n",
	"5\r\nhelloX\r\n",
	"5\nhello\n0\n\n",
	"5 \r\nhello\r\n0\r\n\r\n",
	"0x5\r\nhello\r\n",
	"0\r\nA : b\r\n\r\n",
	"0\r\nA: b\r\n c\r\n\r\n",
	// Chunk extensions: quoted, spaced, on the last chunk, long, many.
	"1;a=\"x;y,z\"\r\nx\r\n0;last=\"\\\"\"\r\n\r\n",
	"1 ;\ta = b ; c\r\nx\r\n0\r\n\r\n",
	"1;a=\"\x80\xff\"\r\nx\r\n0\r\n\r\n",
	"1;=b\r\nx\r\n",
	"1;a=b=c\r\nx\r\n",
	"5;ext=" + strings.Repeat("a", 16<<10) + "\r\nhello\r\n0\r\n\r\n",
	"1;a=" + strings.Repeat("b", h1.MaxChunkLineBytes-6) + "\r\nx\r\n0\r\n\r\n",
	strings.Repeat("1;a="+strings.Repeat("b", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n",
	strings.Repeat("1;e\r\nx\r\n", 100) + "0\r\n\r\n",
}

func FuzzH1Chunked(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(0))
	}
	enc := h1.AppendChunk(nil, []byte("hello, world"))
	enc = h1.AppendChunk(enc, bytes.Repeat([]byte{0, '\r', '\n'}, 100))
	enc = h1.AppendLastChunk(enc, frames.Fields{{Name: "grpc-status", Value: "0"}, {Name: "x-t", Value: "a b"}})
	f.Add(enc, uint8(3))

	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		newDec := func() *h1.ChunkedDecoder {
			return &h1.ChunkedDecoder{MaxTrailerBytes: 64 << (flags & 7), MaxTrailerFields: 1 + int(flags>>3), Underscore: h1.UnderscorePolicy(flags % 3)}
		}
		whole := newDec()
		data, n, err := decodeChunked(t, whole, in, len(in))
		// The verdict must not depend on how the input is split.
		split := newDec()
		data2, n2, err2 := decodeChunked(t, split, in, 1+int(flags%13))
		if !bytes.Equal(data, data2) || n != n2 || !sameErr(err, err2) || whole.Done() != split.Done() {
			t.Fatalf("split changed the result: %q %d %v / %q %d %v", data, n, err, data2, n2, err2)
		}
		// The decoder never leaves more undecided than a line cap: an
		// endless extension or trailer line fails, it is not buffered.
		if err == h1.ErrShort && len(in)-n >= max(h1.MaxChunkLineBytes, whole.MaxTrailerBytes) {
			t.Fatalf("%d bytes pending without a verdict", len(in)-n)
		}
		if err != nil {
			checkErr(t, err, func(s int) bool { return s == 400 || s == 431 })
			return
		}
		tr := whole.Trailers()
		checkFields(t, tr)
		if !sameFields(tr, split.Trailers()) {
			t.Fatalf("trailers differ across splits: %q %q", tr, split.Trailers())
		}
		// decode → encode → decode.
		re := h1.AppendLastChunk(h1.AppendChunk(nil, data), tr)
		again := &h1.ChunkedDecoder{MaxTrailerBytes: 1 << 20, MaxTrailerFields: 1 << 10, Underscore: h1.UnderscoreAllow}
		data3, n3, err := decodeChunked(t, again, re, 7)
		if err != nil || n3 != len(re) || !bytes.Equal(data3, data) || !sameFields(again.Trailers(), tr) {
			t.Fatalf("re-decode of %q: %q %d %v %q", re, data3, n3, err, again.Trailers())
		}
	})
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	var ea, eb *h1.Error
	if errors.As(a, &ea) && errors.As(b, &eb) {
		return ea.Token == eb.Token
	}
	return a == b
}
