package h1

import (
	"testing"
)

func TestParseResponse_Framing(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		method    string
		status    int
		proto     string
		body      Body
		cl        int64
		keepAlive bool
	}{
		{"content-length", crlf("HTTP/1.1 200 OK", "Content-Length: 12"), "GET", 200, "HTTP/1.1", Body{BodyLength, 12}, 12, true},
		{"zero length", crlf("HTTP/1.1 200 OK", "Content-Length: 0"), "GET", 200, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
		{"chunked", crlf("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "GET", 200, "HTTP/1.1", Body{Kind: BodyChunked}, -1, true},
		{"close-delimited", crlf("HTTP/1.1 200 OK", "Content-Type: text/plain"), "GET", 200, "HTTP/1.1", Body{Kind: BodyClose}, -1, false},
		{"connection close", crlf("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 1"), "GET", 200, "HTTP/1.1", Body{BodyLength, 1}, 1, false},
		{"http/1.0 default close", crlf("HTTP/1.0 200 OK", "Content-Length: 1"), "GET", 200, "HTTP/1.0", Body{BodyLength, 1}, 1, false},
		{"http/1.0 keep-alive", crlf("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"), "GET", 200, "HTTP/1.0", Body{BodyLength, 1}, 1, true},
		{"HEAD keeps length as metadata", crlf("HTTP/1.1 200 OK", "Content-Length: 1000"), "HEAD", 200, "HTTP/1.1", Body{}, 1000, true},
		{"HEAD with chunked", crlf("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "HEAD", 200, "HTTP/1.1", Body{}, -1, true},
		{"204", crlf("HTTP/1.1 204 No Content"), "DELETE", 204, "HTTP/1.1", Body{}, -1, true},
		{"304 with length", crlf("HTTP/1.1 304 Not Modified", "Content-Length: 50"), "GET", 304, "HTTP/1.1", Body{}, 50, true},
		{"100 continue", crlf("HTTP/1.1 100 Continue"), "POST", 100, "HTTP/1.1", Body{}, -1, true},
		{"101 switching", crlf("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"), "GET", 101, "HTTP/1.1", Body{}, -1, true},
		{"connect 200 ignores framing", crlf("HTTP/1.1 200 Connection established", "Content-Length: 5", "Transfer-Encoding: chunked"), "CONNECT", 200, "HTTP/1.1", Body{}, -1, true},
		{"connect 407 has a body", crlf("HTTP/1.1 407 Proxy Auth", "Content-Length: 5"), "CONNECT", 407, "HTTP/1.1", Body{BodyLength, 5}, 5, true},
		{"no reason phrase", crlf("HTTP/1.1 200 ", "Content-Length: 0"), "GET", 200, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
		{"no SP after code", crlf("HTTP/1.1 200", "Content-Length: 0"), "GET", 200, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
		{"unregistered code", crlf("HTTP/1.1 599 Whatever it is", "Content-Length: 0"), "GET", 599, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
		{"http/1.1 minor 9", crlf("HTTP/1.9 200 OK", "Content-Length: 0"), "GET", 200, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
		{"host is an ordinary field", crlf("HTTP/1.1 200 OK", "Host: x", "Content-Length: 0"), "GET", 200, "HTTP/1.1", Body{BodyLength, 0}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, n, err := ParseResponse([]byte(tt.in+"body"), tt.method, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.in) {
				t.Fatalf("n = %d, want %d", n, len(tt.in))
			}
			h := resp.Head
			if h.Status != tt.status || h.Proto != tt.proto || h.ContentLength != tt.cl || h.Method != "" {
				t.Fatalf("head = %+v", h)
			}
			if resp.Body != tt.body || resp.KeepAlive != tt.keepAlive {
				t.Fatalf("body = %+v keepAlive = %v", resp.Body, resp.KeepAlive)
			}
		})
	}
}

func TestParseResponse_Fields(t *testing.T) {
	in := crlf("HTTP/1.1 200 OK", "Set-Cookie: a=1", "Content-Type:  text/html ", "set-cookie: b=2", "Host: x", "Content-Length: 3, 3")
	resp, _, err := ParseResponse([]byte(in), "GET", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fl("set-cookie", "a=1", "content-type", "text/html", "set-cookie", "b=2", "host", "x", "content-length", "3")
	if len(resp.Head.Fields) != len(want) {
		t.Fatalf("fields = %q", resp.Head.Fields)
	}
	for i := range want {
		if resp.Head.Fields[i] != want[i] {
			t.Fatalf("fields = %q, want %q", resp.Head.Fields, want)
		}
	}
}

func TestParseResponse_Rejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		method string
		lim    *Limits
		token  string
	}{
		{"cl and te", crlf("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"), "GET", nil, "h1_resp_cl_and_te"},
		{"cl conflict", crlf("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"), "GET", nil, "h1_resp_cl_conflict"},
		{"cl conflict on HEAD", crlf("HTTP/1.1 200 OK", "Content-Length: 5, 6"), "HEAD", nil, "h1_resp_cl_conflict"},
		{"bad cl", crlf("HTTP/1.1 200 OK", "Content-Length: -1"), "GET", nil, "h1_resp_bad_cl"},
		{"te not chunked", crlf("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"), "GET", nil, "h1_resp_te_not_chunked"},
		{"te strict", crlf("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), "GET", &Limits{StrictTE: true}, "h1_resp_te_strict"},
		{"te in http/1.0", crlf("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), "GET", nil, "h1_resp_te_http10"},
		{"obs-fold", crlf("HTTP/1.1 200 OK", "X: a", " b"), "GET", nil, "h1_resp_obs_fold"},
		{"ws before colon", crlf("HTTP/1.1 200 OK", "X : a"), "GET", nil, "h1_resp_ws_before_colon"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", nil, "h1_resp_bare_lf"},
		{"bare CR in reason", crlf("HTTP/1.1 200 O\rK"), "GET", nil, "h1_resp_bare_cr"},
		{"NUL in reason", crlf("HTTP/1.1 200 O\x00K"), "GET", nil, "h1_resp_bad_status_line"},
		{"NUL in value", crlf("HTTP/1.1 200 OK", "X: \x00"), "GET", nil, "h1_resp_bad_field_value"},
		{"underscore", crlf("HTTP/1.1 200 OK", "X_Y: 1"), "GET", nil, "h1_resp_underscore"},
		{"status two digits", crlf("HTTP/1.1 20 OK"), "GET", nil, "h1_resp_bad_status"},
		{"status line short", crlf("HTTP/1.1 20"), "GET", nil, "h1_resp_bad_status_line"},
		{"status letters", crlf("HTTP/1.1 2x0 OK"), "GET", nil, "h1_resp_bad_status"},
		{"status 099", crlf("HTTP/1.1 099 Low"), "GET", nil, "h1_resp_bad_status"},
		{"status 600", crlf("HTTP/1.1 600 High"), "GET", nil, "h1_resp_bad_status"},
		{"status four digits", crlf("HTTP/1.1 2000 OK"), "GET", nil, "h1_resp_bad_status_line"},
		{"double space", crlf("HTTP/1.1  200 OK"), "GET", nil, "h1_resp_bad_status"},
		{"version 2", crlf("HTTP/2.0 200 OK"), "GET", nil, "h1_resp_version_unsupported"},
		{"version lower", crlf("http/1.1 200 OK"), "GET", nil, "h1_resp_bad_version"},
		{"not http, incomplete", "SSH-2.0-OpenSSH", "GET", nil, "h1_resp_bad_status_line"},
		{"head too large", crlf("HTTP/1.1 200 OK", "X: 0123456789012345678901234567890123456789"), "GET", &Limits{MaxHeadBytes: 32}, "h1_resp_head_too_large"},
		{"too many fields", crlf("HTTP/1.1 200 OK", "A: 1", "B: 2", "C: 3"), "GET", &Limits{MaxFields: 2}, "h1_resp_too_many_fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, n, err := ParseResponse([]byte(tt.in), tt.method, tt.lim)
			wantErr(t, err, 502, tt.token)
			if n != 0 {
				t.Fatalf("n = %d on error", n)
			}
		})
	}
}

func TestParseResponse_StrictPrefixIsShort(t *testing.T) {
	valid := []string{
		crlf("HTTP/1.1 200 OK", "Content-Length: 12", "Content-Type: text/plain"),
		crlf("HTTP/1.1 204 No Content"),
		crlf("HTTP/1.0 301 Moved", "Location: /x"),
		crlf("HTTP/1.1 200"),
	}
	for _, in := range valid {
		if _, n, err := ParseResponse([]byte(in), "GET", nil); err != nil || n != len(in) {
			t.Fatalf("%q: n = %d, err = %v", in, n, err)
		}
		for i := range len(in) {
			if _, n, err := ParseResponse([]byte(in[:i]), "GET", nil); err != ErrShort || n != 0 {
				t.Fatalf("%q prefix %d: n = %d, err = %v", in, i, n, err)
			}
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte(crlf("HTTP/1.1 200 OK", "Date: Mon, 27 Jul 2009 12:28:53 GMT", "Server: nginx",
		"Content-Type: text/html; charset=utf-8", "Content-Length: 612", "Connection: keep-alive",
		"ETag: \"5e6f-264\"", "Accept-Ranges: bytes"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseResponse(in, "GET", nil); err != nil {
			b.Fatal(err)
		}
	}
}
