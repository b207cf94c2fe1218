package h1

import (
	"errors"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/frames"
)

const browserGET = "GET /search?q=expressgateway&lang=en HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Sec-Fetch-Site: none\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-User: ?1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n" +
	"\r\n"

func TestParseRequest_BrowserGET(t *testing.T) {
	req, n, err := ParseRequest([]byte(browserGET+"NEXT"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(browserGET) {
		t.Fatalf("n = %d, want %d", n, len(browserGET))
	}
	h := req.Head
	if h.Method != "GET" || h.Path != "/search?q=expressgateway&lang=en" || h.Authority != "www.example.com" ||
		h.Proto != "HTTP/1.1" || h.Scheme != "" || h.ContentLength != -1 {
		t.Fatalf("head = %+v", h)
	}
	if req.Body != (Body{Kind: BodyNone}) || !req.KeepAlive || req.Expect100 || req.Upgrade != "" {
		t.Fatalf("req = %+v", req)
	}
	if len(h.Fields) != 14 || h.Fields.Has("host") {
		t.Fatalf("fields = %v", h.Fields)
	}
	// Order kept, names lowered, values trimmed and intact.
	if f := h.Fields[0]; f != (frames.Field{Name: "connection", Value: "keep-alive"}) {
		t.Fatalf("first field = %v", f)
	}
	if f := h.Fields[13]; f != (frames.Field{Name: "cookie", Value: "session=0123456789abcdef; theme=dark"}) {
		t.Fatalf("last field = %v", f)
	}
	for _, f := range h.Fields {
		if f.Name != strings.ToLower(f.Name) {
			t.Fatalf("name %q not lower case", f.Name)
		}
	}
}

func TestParseRequest_Accepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  *Limits
		// checks
		method, path, authority, scheme, proto string
		body                                   Body
		cl                                     int64
		keepAlive, expect                      bool
		upgrade                                string
		fields                                 frames.Fields
	}{
		{name: "minimal", in: crlf("GET / HTTP/1.1", "Host: a"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "value OWS trimmed, inner kept", in: crlf("GET / HTTP/1.1", "Host: a", "X-A: \t v  1 \t"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("x-a", "v  1")},
		{name: "empty value", in: crlf("GET / HTTP/1.1", "Host: a", "X-Empty:", "X-Sp:   "),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("x-empty", "", "x-sp", "")},
		{name: "obs-text in value", in: crlf("GET / HTTP/1.1", "Host: a", "X: caf\xc3\xa9"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("x", "caf\xc3\xa9")},
		{name: "repeated fields kept in order", in: crlf("GET / HTTP/1.1", "A: 1", "Host: a", "B: 2", "a: 3"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("a", "1", "b", "2", "a", "3")},
		{name: "content-length", in: crlf("POST /p HTTP/1.1", "Host: a", "Content-Length: 42"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: 42, keepAlive: true,
			body: Body{BodyLength, 42}, fields: fl("content-length", "42")},
		{name: "content-length zero", in: crlf("POST /p HTTP/1.1", "Host: a", "Content-Length: 0"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: 0, keepAlive: true,
			body: Body{BodyLength, 0}, fields: fl("content-length", "0")},
		{name: "content-length leading zeros", in: crlf("POST /p HTTP/1.1", "Host: a", "Content-Length: 007"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: 7, keepAlive: true,
			body: Body{BodyLength, 7}, fields: fl("content-length", "007")},
		{name: "identical content-length folded", in: crlf("POST /p HTTP/1.1", "Host: a", "Content-Length: 5, 5", "X: y", "content-length: 5"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: 5, keepAlive: true,
			body: Body{BodyLength, 5}, fields: fl("content-length", "5", "x", "y")},
		{name: "chunked", in: crlf("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: Chunked"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			body: Body{Kind: BodyChunked}, fields: fl("transfer-encoding", "Chunked")},
		{name: "gzip then chunked, lax", in: crlf("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			body: Body{Kind: BodyChunked}, fields: fl("transfer-encoding", "gzip", "transfer-encoding", "chunked")},
		{name: "coding with parameters before chunked", in: crlf("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: x-c;a=b;c=\"d e\", chunked"),
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			body: Body{Kind: BodyChunked}, fields: fl("transfer-encoding", "x-c;a=b;c=\"d e\", chunked")},
		{name: "chunked strict", in: crlf("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"), lim: &Limits{StrictTE: true},
			method: "POST", path: "/p", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			body: Body{Kind: BodyChunked}, fields: fl("transfer-encoding", "chunked")},
		{name: "connection close", in: crlf("GET / HTTP/1.1", "Host: a", "Connection: foo, Close"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1,
			fields: fl("connection", "foo, Close")},
		{name: "http/1.0 closes", in: crlf("GET / HTTP/1.0"),
			method: "GET", path: "/", proto: "HTTP/1.0", cl: -1},
		{name: "http/1.0 keep-alive", in: crlf("GET / HTTP/1.0", "Host: a", "Connection: Keep-Alive"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.0", cl: -1, keepAlive: true,
			fields: fl("connection", "Keep-Alive")},
		{name: "http/1.0 ignores expect and upgrade", in: crlf("GET / HTTP/1.0", "Expect: 100-continue", "Connection: upgrade", "Upgrade: websocket"),
			method: "GET", path: "/", proto: "HTTP/1.0", cl: -1,
			fields: fl("expect", "100-continue", "connection", "upgrade", "upgrade", "websocket")},
		{name: "http/1.2 is 1.1", in: crlf("GET / HTTP/1.2", "Host: a"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "expect 100-continue", in: crlf("PUT /x HTTP/1.1", "Host: a", "Expect: 100-Continue", "Content-Length: 3"),
			method: "PUT", path: "/x", authority: "a", proto: "HTTP/1.1", cl: 3, keepAlive: true, expect: true,
			body: Body{BodyLength, 3}, fields: fl("expect", "100-Continue", "content-length", "3")},
		{name: "websocket upgrade", in: crlf("GET /ws HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket"),
			method: "GET", path: "/ws", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true, upgrade: "websocket",
			fields: fl("connection", "Upgrade", "upgrade", "websocket")},
		{name: "upgrade without connection token", in: crlf("GET /ws HTTP/1.1", "Host: a", "Upgrade: websocket"),
			method: "GET", path: "/ws", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("upgrade", "websocket")},
		{name: "absolute-form overrides host", in: crlf("GET HTTPS://Origin.example:8443/p?q HTTP/1.1", "Host: other"),
			method: "GET", path: "HTTPS://Origin.example:8443/p?q", authority: "Origin.example:8443", scheme: "https",
			proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "absolute-form no path", in: crlf("GET http://a.example HTTP/1.1", "Host: a.example"),
			method: "GET", path: "http://a.example", authority: "a.example", scheme: "http", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "connect", in: crlf("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"),
			method: "CONNECT", authority: "a.example:443", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "connect ipv6", in: crlf("CONNECT [2001:db8::1]:443 HTTP/1.1", "Host: [2001:db8::1]:443"),
			method: "CONNECT", authority: "[2001:db8::1]:443", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "options asterisk", in: crlf("OPTIONS * HTTP/1.1", "Host: a"),
			method: "OPTIONS", path: "*", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "leading empty lines skipped", in: "\r\n\r\n" + crlf("GET / HTTP/1.1", "Host: a"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "underscore dropped", in: crlf("GET / HTTP/1.1", "Host: a", "X_Forwarded_For: 1.2.3.4", "B: 1"), lim: &Limits{Underscore: UnderscoreDrop},
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("b", "1")},
		{name: "underscore allowed", in: crlf("GET / HTTP/1.1", "Host: a", "X_Y: 1"), lim: &Limits{Underscore: UnderscoreAllow},
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("x_y", "1")},
		{name: "rare mixed-case name lowered", in: crlf("GET / HTTP/1.1", "Host: a", "X-Very-Rare-Name: 1"),
			method: "GET", path: "/", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true,
			fields: fl("x-very-rare-name", "1")},
		{name: "host with port and pct", in: crlf("GET / HTTP/1.1", "Host: ex%41mple.com:8080"),
			method: "GET", path: "/", authority: "ex%41mple.com:8080", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "query with brackets and pipes", in: crlf("GET /a?b[]=1&c=x|y HTTP/1.1", "Host: a"),
			method: "GET", path: "/a?b[]=1&c=x|y", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
		{name: "webdav method", in: crlf("PROPFIND /d HTTP/1.1", "Host: a"),
			method: "PROPFIND", path: "/d", authority: "a", proto: "HTTP/1.1", cl: -1, keepAlive: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, err := ParseRequest([]byte(tt.in+"BODY"), tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.in) {
				t.Fatalf("n = %d, want %d", n, len(tt.in))
			}
			h := req.Head
			if h.Method != tt.method || h.Path != tt.path || h.Authority != tt.authority || h.Scheme != tt.scheme || h.Proto != tt.proto {
				t.Fatalf("head = %+v", h)
			}
			if h.ContentLength != tt.cl || req.Body != tt.body {
				t.Fatalf("cl = %d body = %+v", h.ContentLength, req.Body)
			}
			if req.KeepAlive != tt.keepAlive || req.Expect100 != tt.expect || req.Upgrade != tt.upgrade {
				t.Fatalf("req = %+v", req)
			}
			if len(h.Fields) != len(tt.fields) {
				t.Fatalf("fields = %q, want %q", h.Fields, tt.fields)
			}
			for i := range tt.fields {
				if h.Fields[i] != tt.fields[i] {
					t.Fatalf("fields = %q, want %q", h.Fields, tt.fields)
				}
			}
		})
	}
}

func TestParseRequest_Rejects(t *testing.T) {
	long := strings.Repeat("a", 100)
	manyFields := []string{"GET / HTTP/1.1", "Host: a"}
	for i := range 5 {
		manyFields = append(manyFields, "X"+string(rune('a'+i))+": 1")
	}
	tests := []struct {
		name   string
		in     string
		lim    *Limits
		status int
		token  string
	}{
		// Framing (RFC 9112 §6).
		{"cl and te", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"), nil, 400, "h1_cl_and_te"},
		{"te and cl", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"), nil, 400, "h1_cl_and_te"},
		{"cl differing lines", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 6"), nil, 400, "h1_cl_conflict"},
		{"cl differing list", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 6"), nil, 400, "h1_cl_conflict"},
		{"cl plus", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: +5"), nil, 400, "h1_bad_cl"},
		{"cl minus", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: -5"), nil, 400, "h1_bad_cl"},
		{"cl hex", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 0x5"), nil, 400, "h1_bad_cl"},
		{"cl letters", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5a"), nil, 400, "h1_bad_cl"},
		{"cl inner space", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5 5"), nil, 400, "h1_bad_cl"},
		{"cl empty", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: "), nil, 400, "h1_bad_cl"},
		{"cl empty element", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5,"), nil, 400, "h1_bad_cl"},
		{"cl overflow", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999"), nil, 400, "h1_bad_cl"},
		{"cl 19 digits", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 1000000000000000000"), nil, 400, "h1_bad_cl"},
		{"te gzip only", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip"), nil, 400, "h1_te_not_chunked"},
		{"te chunked then gzip", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, gzip"), nil, 400, "h1_te_not_chunked"},
		{"te lines chunked then gzip", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"), nil, 400, "h1_te_not_chunked"},
		{"te chunked twice", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, chunked"), nil, 400, "h1_bad_te"},
		{"te empty", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: "), nil, 400, "h1_bad_te"},
		{"te only commas", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: , ,"), nil, 400, "h1_bad_te"},
		{"te chunked with param", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked;q=1"), nil, 400, "h1_bad_te"},
		{"te param without value", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: x;a, chunked"), nil, 400, "h1_bad_te"},
		{"te param bad value", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: x;a=(b), chunked"), nil, 400, "h1_bad_te"},
		{"te param empty name", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: x;=b, chunked"), nil, 400, "h1_bad_te"},
		{"te bad token", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: \"chunked\""), nil, 400, "h1_bad_te"},
		{"te vertical tab", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: \x0bchunked"), nil, 400, "h1_bad_field_value"},
		// Strict: a coding we do not implement is 501 (as nginx answers);
		// the smuggling classes keep their 400.
		{"te strict gzip chunked", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked"), &Limits{StrictTE: true}, 501, "h1_te_strict"},
		{"te strict gzip line, chunked line", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"), &Limits{StrictTE: true}, 501, "h1_te_strict"},
		{"te strict coding with params", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: x-c;a=b, chunked"), &Limits{StrictTE: true}, 501, "h1_te_strict"},
		{"te strict two lines", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), &Limits{StrictTE: true}, 400, "h1_bad_te"},
		{"te strict chunked twice", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked, chunked"), &Limits{StrictTE: true}, 400, "h1_bad_te"},
		{"te strict gzip only", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip"), &Limits{StrictTE: true}, 400, "h1_te_not_chunked"},
		{"te strict chunked not last", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, gzip"), &Limits{StrictTE: true}, 400, "h1_te_not_chunked"},
		{"te strict with cl", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: gzip, chunked"), &Limits{StrictTE: true}, 400, "h1_cl_and_te"},
		{"te strict empty", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: ,"), &Limits{StrictTE: true}, 400, "h1_bad_te"},
		{"te in http/1.0", crlf("POST / HTTP/1.0", "Transfer-Encoding: chunked"), nil, 400, "h1_te_http10"},
		{"te and cl in http/1.0", crlf("POST / HTTP/1.0", "Content-Length: 3", "Transfer-Encoding: chunked"), nil, 400, "h1_te_http10"},

		// Lines (RFC 9112 §2.2, §5).
		{"obs-fold SP", crlf("GET / HTTP/1.1", "Host: a", "X: 1", " 2"), nil, 400, "h1_obs_fold"},
		{"obs-fold HTAB", crlf("GET / HTTP/1.1", "Host: a", "X: 1", "\t2"), nil, 400, "h1_obs_fold"},
		{"ws after start line", crlf("GET / HTTP/1.1", " Host: a"), nil, 400, "h1_ws_after_start_line"},
		{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", nil, 400, "h1_bare_lf"},
		{"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", nil, 400, "h1_bare_lf"},
		{"bare LF at end", "GET / HTTP/1.1\r\nHost: a\r\n\n", nil, 400, "h1_bare_lf"},
		{"bare LF first", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", nil, 400, "h1_bare_lf"},
		{"bare CR in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\rb"), nil, 400, "h1_bare_cr"},
		{"bare CR ends value", crlf("GET / HTTP/1.1", "Host: a", "X: a\r"), nil, 400, "h1_bare_cr"},
		{"bare CR in name", crlf("GET / HTTP/1.1", "Host: a", "X\r: a"), nil, 400, "h1_bare_cr"},
		{"bare CR line", crlf("GET / HTTP/1.1", "Host: a", "\r"), nil, 400, "h1_bare_cr"},
		{"bare CR in target", crlf("GET /\r HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"ws before colon", crlf("GET / HTTP/1.1", "Host : a"), nil, 400, "h1_ws_before_colon"},
		{"tab before colon", crlf("GET / HTTP/1.1", "Host: a", "X\t: a"), nil, 400, "h1_ws_before_colon"},
		{"name with paren", crlf("GET / HTTP/1.1", "Host: a", "X(y): 1"), nil, 400, "h1_bad_field_name"},
		{"name with quote", crlf("GET / HTTP/1.1", "Host: a", "\"x\": 1"), nil, 400, "h1_bad_field_name"},
		{"name with slash", crlf("GET / HTTP/1.1", "Host: a", "x/y: 1"), nil, 400, "h1_bad_field_name"},
		{"name non-ascii", crlf("GET / HTTP/1.1", "Host: a", "x\xffy: 1"), nil, 400, "h1_bad_field_name"},
		{"empty name", crlf("GET / HTTP/1.1", "Host: a", ": 1"), nil, 400, "h1_bad_field_name"},
		{"no colon", crlf("GET / HTTP/1.1", "Host: a", "X-No-Colon"), nil, 400, "h1_no_colon"},
		{"NUL in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\x00b"), nil, 400, "h1_bad_field_value"},
		{"CTL in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\x01b"), nil, 400, "h1_bad_field_value"},
		{"DEL in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\x7fb"), nil, 400, "h1_bad_field_value"},
		{"ESC in value", crlf("GET / HTTP/1.1", "Host: a", "X: \x1b[31m"), nil, 400, "h1_bad_field_value"},
		{"underscore default", crlf("GET / HTTP/1.1", "Host: a", "X_Forwarded_For: 1"), nil, 400, "h1_underscore"},

		// Host (RFC 9112 §3.2, RFC 9110 §7.2).
		{"host missing", crlf("GET / HTTP/1.1"), nil, 400, "h1_host_missing"},
		{"host missing absolute-form", crlf("GET http://a/ HTTP/1.1"), nil, 400, "h1_host_missing"},
		{"host twice", crlf("GET / HTTP/1.1", "Host: a", "Host: a"), nil, 400, "h1_host_multiple"},
		{"host twice http/1.0", crlf("GET / HTTP/1.0", "Host: a", "host: b"), nil, 400, "h1_host_multiple"},
		{"host comma", crlf("GET / HTTP/1.1", "Host: a, b"), nil, 400, "h1_bad_host"},
		{"host space", crlf("GET / HTTP/1.1", "Host: a b"), nil, 400, "h1_bad_host"},
		{"host empty", crlf("GET / HTTP/1.1", "Host:"), nil, 400, "h1_bad_host"},
		{"host DEL", crlf("GET / HTTP/1.1", "Host: a\x7f"), nil, 400, "h1_bad_field_value"},
		{"host C0", crlf("GET / HTTP/1.1", "Host: a\x01"), nil, 400, "h1_bad_field_value"},
		{"host userinfo", crlf("GET / HTTP/1.1", "Host: u@a"), nil, 400, "h1_bad_host"},
		{"host slash", crlf("GET / HTTP/1.1", "Host: a/b"), nil, 400, "h1_bad_host"},
		{"host open bracket", crlf("GET / HTTP/1.1", "Host: [::1"), nil, 400, "h1_bad_host"},
		{"host bracket junk", crlf("GET / HTTP/1.1", "Host: [::1]x"), nil, 400, "h1_bad_host"},
		{"host bracket v4", crlf("GET / HTTP/1.1", "Host: [1.2.3.4]"), nil, 400, "h1_bad_host"},
		{"host bracket zone", crlf("GET / HTTP/1.1", "Host: [fe80::1%25eth0]"), nil, 400, "h1_bad_host"},
		{"host bare ipv6", crlf("GET / HTTP/1.1", "Host: ::1"), nil, 400, "h1_bad_host"},
		{"host empty port", crlf("GET / HTTP/1.1", "Host: a:"), nil, 400, "h1_bad_host"},
		{"host letter port", crlf("GET / HTTP/1.1", "Host: a:8o"), nil, 400, "h1_bad_host"},
		{"host port too big", crlf("GET / HTTP/1.1", "Host: a:65536"), nil, 400, "h1_bad_host"},
		{"host two ports", crlf("GET / HTTP/1.1", "Host: a:80:80"), nil, 400, "h1_bad_host"},
		{"host empty name", crlf("GET / HTTP/1.1", "Host: :80"), nil, 400, "h1_bad_host"},
		{"host bad pct", crlf("GET / HTTP/1.1", "Host: a%zz"), nil, 400, "h1_bad_host"},

		// Request line (RFC 9112 §3).
		{"double space", crlf("GET  / HTTP/1.1", "Host: a"), nil, 400, "h1_bad_request_line"},
		{"trailing space", crlf("GET / HTTP/1.1 ", "Host: a"), nil, 400, "h1_bad_request_line"},
		{"space in target", crlf("GET /a b HTTP/1.1", "Host: a"), nil, 400, "h1_bad_request_line"},
		{"http/0.9", crlf("GET /", "Host: a"), nil, 400, "h1_bad_request_line"},
		{"method only", crlf("GET", "Host: a"), nil, 400, "h1_bad_request_line"},
		{"leading space", crlf(" GET / HTTP/1.1", "Host: a"), nil, 400, "h1_bad_method"},
		{"tab separator", crlf("GET\t/ HTTP/1.1", "Host: a"), nil, 400, "h1_bad_method"},
		{"method bad char", crlf("G(T / HTTP/1.1", "Host: a"), nil, 400, "h1_bad_method"},
		{"method NUL", crlf("GE\x00T / HTTP/1.1", "Host: a"), nil, 400, "h1_bad_method"},
		{"method too long", crlf(strings.Repeat("M", MaxMethodBytes+1)+" / HTTP/1.1", "Host: a"), nil, 501, "h1_method_too_long"},
		{"version lower case", crlf("GET / http/1.1", "Host: a"), nil, 400, "h1_bad_version"},
		{"version two digits", crlf("GET / HTTP/1.10", "Host: a"), nil, 400, "h1_bad_version"},
		{"version no minor", crlf("GET / HTTP/1", "Host: a"), nil, 400, "h1_bad_version"},
		{"version junk", crlf("GET / HTTP/1.x", "Host: a"), nil, 400, "h1_bad_version"},
		{"version 2.0", crlf("GET / HTTP/2.0", "Host: a"), nil, 505, "h1_version_unsupported"},
		{"version 0.9", crlf("GET / HTTP/0.9", "Host: a"), nil, 505, "h1_version_unsupported"},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", nil, 505, "h1_version_unsupported"},
		{"relative target", crlf("GET a HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"fragment", crlf("GET /a#b HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"non-ascii target", crlf("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"DEL in target", crlf("GET /\x7f HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"asterisk not options", crlf("GET * HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"connect origin-form", crlf("CONNECT / HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"connect no port", crlf("CONNECT a.example HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"absolute ftp", crlf("GET ftp://a/ HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"absolute userinfo", crlf("GET http://u:p@a/ HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"absolute empty host", crlf("GET http:///p HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"absolute no slashes", crlf("GET http:a/p HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},
		{"authority-form on GET", crlf("GET a.example:443 HTTP/1.1", "Host: a"), nil, 400, "h1_bad_target"},

		// Caps.
		{"uri too long", crlf("GET /"+long+" HTTP/1.1", "Host: a"), &Limits{MaxURIBytes: 64}, 414, "h1_uri_too_long"},
		{"uri too long, line incomplete", "GET /" + long, &Limits{MaxURIBytes: 64}, 414, "h1_uri_too_long"},
		{"uri too long, version incomplete", "GET /" + long + " HT", &Limits{MaxURIBytes: 64}, 414, "h1_uri_too_long"},
		{"head too large", crlf("GET / HTTP/1.1", "Host: a", "X: "+long), &Limits{MaxHeadBytes: 64}, 431, "h1_head_too_large"},
		{"head too large, incomplete", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long, &Limits{MaxHeadBytes: 64}, 431, "h1_head_too_large"},
		{"head too large, empty lines", strings.Repeat("\r\n", 40), &Limits{MaxHeadBytes: 64}, 431, "h1_head_too_large"},
		{"too many fields", crlf(manyFields...), &Limits{MaxFields: 4}, 431, "h1_too_many_fields"},
		{"too many fields, incomplete", strings.TrimSuffix(crlf(manyFields...), "\r\n"), &Limits{MaxFields: 4}, 431, "h1_too_many_fields"},
		{"method too long, incomplete", strings.Repeat("M", MaxMethodBytes+1), nil, 501, "h1_method_too_long"},
		{"garbage, incomplete", "\x16\x03\x01\x02\x00", nil, 400, "h1_bad_method"},
		{"version too long, incomplete", "GET / HTTP/1.1111", nil, 400, "h1_bad_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, err := ParseRequest([]byte(tt.in), tt.lim)
			wantErr(t, err, tt.status, tt.token)
			if n != 0 || req.Head != nil {
				t.Fatalf("n = %d, head = %v on error", n, req.Head)
			}
		})
	}
}

// validRequests are heads that parse; every strict prefix of each must ask
// for more input.
var validRequests = []string{
	browserGET,
	crlf("GET / HTTP/1.1", "Host: a"),
	"\r\n" + crlf("POST /upload?x=1 HTTP/1.1", "Host: a:8080", "Content-Length: 5", "Expect: 100-continue"),
	crlf("POST / HTTP/1.1", "Host: [::1]:80", "Transfer-Encoding: chunked"),
	crlf("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"),
	crlf("GET http://a.example/x HTTP/1.0"),
	crlf("OPTIONS * HTTP/1.1", "Host: a", "X-Empty:"),
}

func TestParseRequest_StrictPrefixIsShort(t *testing.T) {
	for _, in := range validRequests {
		if _, n, err := ParseRequest([]byte(in), nil); err != nil || n != len(in) {
			t.Fatalf("%q: n = %d, err = %v", in, n, err)
		}
		for i := range len(in) {
			if _, n, err := ParseRequest([]byte(in[:i]), nil); err != ErrShort || n != 0 {
				t.Fatalf("%q prefix %d: n = %d, err = %v", in, i, n, err)
			}
		}
	}
}

func TestParseRequest_CapsAreInclusive(t *testing.T) {
	in := crlf("GET /"+strings.Repeat("a", 63)+" HTTP/1.1", "Host: a", "B: 1")
	lim := &Limits{MaxURIBytes: 64, MaxHeadBytes: len(in), MaxFields: 2}
	if _, _, err := ParseRequest([]byte(in), lim); err != nil {
		t.Fatalf("at the caps: %v", err)
	}
	lim.MaxHeadBytes--
	if _, _, err := ParseRequest([]byte(in), lim); !errors.Is(err, ErrHeadTooLarge) {
		t.Fatalf("one over the head cap: %v", err)
	}
}

func TestParseRequest_ValuesNeverHoldCRLFOrNUL(t *testing.T) {
	// Every byte value in a field value: only the allowed ones pass.
	for c := range 256 {
		in := crlf("GET / HTTP/1.1", "Host: a", "X: a"+string(rune(c))[:1]+"b")
		if c >= 0x80 {
			in = crlf("GET / HTTP/1.1", "Host: a", "X: a"+string([]byte{byte(c)})+"b")
		}
		req, _, err := ParseRequest([]byte(in), nil)
		allowed := c == '\t' || c >= 0x20 && c != 0x7f
		if (err == nil) != allowed {
			t.Fatalf("byte %#x: err = %v", c, err)
		}
		if err == nil && strings.ContainsAny(req.Head.Fields[0].Value, "\r\n\x00") {
			t.Fatalf("byte %#x reached a value", c)
		}
	}
}

func TestParseRequest_FieldCountClasses(t *testing.T) {
	// The field list shares the Head's allocation up to 32 fields; past
	// that it is separate. Either way every field arrives, in order.
	for _, count := range []int{0, 1, 8, 9, 16, 17, 32, 33, 200} {
		lines := []string{"GET / HTTP/1.1", "Host: a"}
		for i := range count {
			lines = append(lines, "X-"+strings.Repeat("n", i%7)+": "+strings.Repeat("v", i))
		}
		req, _, err := ParseRequest([]byte(crlf(lines...)), nil)
		if err != nil {
			t.Fatalf("%d fields: %v", count, err)
		}
		fs := req.Head.Fields
		if len(fs) != count || cap(fs) < count {
			t.Fatalf("%d fields: got %d (cap %d)", count, len(fs), cap(fs))
		}
		for i, f := range fs {
			if f.Value != strings.Repeat("v", i) {
				t.Fatalf("%d fields: field %d = %q", count, i, f)
			}
		}
	}
}

func BenchmarkParseRequest_BrowserGET(b *testing.B) {
	in := []byte(browserGET)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, err := ParseRequest(in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest_Minimal(b *testing.B) {
	in := []byte(crlf("GET / HTTP/1.1", "Host: a"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRequest(in, nil); err != nil {
			b.Fatal(err)
		}
	}
}
