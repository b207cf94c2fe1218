package pipeline

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// smugglingCorpus holds malformed or ambiguous requests and the status the
// gateway must answer. Each is a way to desynchronise a proxy from its
// backend (RFC 9112 §6.3, §11.2; PortSwigger's CL.TE/TE.CL/TE.TE classes).
var smugglingCorpus = []struct {
	name   string
	raw    string
	status int
}{
	{"cl_te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400},
	{"te_cl", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400},
	{"cl_conflict", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
	{"cl_list_conflict", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400},
	{"cl_plus", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
	{"cl_negative", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
	{"cl_hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", 400},
	{"cl_overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
	{"cl_space_inside", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n", 400},
	{"te_not_final_chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
	{"te_gzip_then_chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	{"chunk_ext_too_long", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=" + strings.Repeat("x", 16<<10) + "\r\nhello\r\n0\r\n\r\n", 400},
	{"te_gzip_only", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	{"te_xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
	{"te_chunked_space_name", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
	{"te_obs_fold", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
	{"te_vertical_tab", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", 400},
	{"te_in_http10", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"te_nul", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n", 400},
	{"obs_fold_header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400},
	{"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
	{"bare_lf_line", "GET / HTTP/1.1\nHost: x\n\n", 400},
	{"bare_cr_line_end", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400},
	{"ws_before_colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", 400},
	{"ws_before_first_field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400},
	{"nul_in_value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
	{"nul_in_name", "GET / HTTP/1.1\r\nHost: x\r\nX\x00A: 1\r\n\r\n", 400},
	{"ctl_in_value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400},
	{"bad_name_char", "GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400},
	{"empty_name", "GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n", 400},
	{"no_colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A 1\r\n\r\n", 400},
	{"underscore_name", "GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", 400},
	{"host_missing", "GET / HTTP/1.1\r\n\r\n", 400},
	{"host_twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"host_comma", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400},
	{"host_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
	{"host_bad_port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400},
	{"host_unbalanced_bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
	{"host_at", "GET / HTTP/1.1\r\nHost: user@evil\r\n\r\n", 400},
	{"method_bad_char", "G(ET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"double_space_request_line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"version_lower", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
	{"version_three", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505},
	{"version_two", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	{"target_space", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"chunk_size_hex_overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", 400},
	{"chunk_size_bad", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
	{"chunk_missing_crlf", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", 400},
	{"chunk_size_leading_space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400},
	{"uri_too_long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	{"head_too_large", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 70) + "\r\n", 431},
	{"too_many_fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-F: 1\r\n", 300) + "\r\n", 431},
}

// TestH1_SmugglingCorpusNeverDesyncsTheBackend sends each request on its own
// connection, followed on the same connection by an innocent request that a
// desynchronised parser would take for a second one. The gateway must answer
// the expected status and close; the backend must see only sentinel requests
// that the test sends separately, never a smuggled or follow-on one.
func TestH1_SmugglingCorpusNeverDesyncsTheBackend(t *testing.T) {
	if len(smugglingCorpus) < 40 {
		t.Fatalf("corpus has %d cases, want at least 40", len(smugglingCorpus))
	}
	var mu sync.Mutex
	var seen []string
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	addr := g.Addr("web").String()
	for _, c := range smugglingCorpus {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte(c.raw))
			conn.Write([]byte("GET /followon HTTP/1.1\r\nHost: x\r\n\r\n"))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			// The connection must end: nothing after a refused head is read.
			if extra, err := http.ReadResponse(br, nil); err == nil {
				t.Fatalf("a second response (%d) followed a refused request", extra.StatusCode)
			}
		})
	}
	// A sentinel proves the backend path works and lets us check the log.
	resp, err := client(t).Get(g.url("web") + "/sentinel")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "GET /sentinel" {
		t.Fatalf("the backend saw %q; want only the sentinel", seen)
	}
}
