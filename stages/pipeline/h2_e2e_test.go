package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The HTTP/2 cells in depth: H1→H2, H2→H1 and H2→H2 (H1→H1 is
// h1_e2e_test.go), each through a live gateway between Go's own HTTP/2
// client and server (net/http's bundled x/net/http2), plus curl, nghttp
// and h2load as subprocesses against h2c and h1s listeners.

// h2Cell is one front → back combination.
type h2Cell struct {
	name, front, back string
}

var h2Cells = []h2Cell{
	{"H1toH2", "h1", "h2"},
	{"H2toH1", "h2", "h1"},
	{"H2toH2", "h2", "h2"},
}

// h2e2eCap is the body cap of the "small" listener of each cell.
const h2e2eCap = 1 << 20

// h2e2eSite is the backend of the HTTP/2 cells. Paths:
//
//	/small         "hello <proto the backend saw>"
//	/echo   POST   the body back; the request trailer X-Req-Trailer comes
//	               back as the response trailer X-Echo-Trailer
//	/sink   POST   reads the body; reports on sink whether it ended cleanly,
//	               answers "<bytes> <sha256>"
//	/down?n=N      N zero bytes with a Content-Length
//	/die           half of a declared body, then the handler dies
type h2e2eSite struct {
	sink chan bool
}

func (s *h2e2eSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/small":
		io.WriteString(w, "hello "+r.Proto)
	case "/echo":
		w.Header().Set("Trailer", "X-Echo-Trailer")
		io.Copy(w, r.Body)
		w.Header().Set("X-Echo-Trailer", r.Trailer.Get("X-Req-Trailer"))
	case "/sink":
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		select {
		case s.sink <- err == nil:
		default:
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	case "/down":
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	case "/die":
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(200)
		w.Write(make([]byte, 50000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	default:
		http.NotFound(w, r)
	}
}

// h2Backend starts net/http's HTTP/2 server on loopback: h2c (prior
// knowledge) when certPath is empty, else h2 over TLS with that
// certificate (ALPN h2 only).
func h2Backend(t *testing.T, h http.Handler, certPath, keyPath string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	srv := &http.Server{Handler: h, Protocols: &p}
	done := make(chan struct{})
	if certPath == "" {
		p.SetUnencryptedHTTP2(true)
		go func() { srv.Serve(ln); close(done) }()
	} else {
		p.SetHTTP2(true) // ALPN h2 only
		go func() { srv.ServeTLS(ln, certPath, keyPath); close(done) }()
	}
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// h2cClient is Go's HTTP/2 client speaking h2c with prior knowledge.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

// h2e2e is a running cell: a gateway with a "big" listener (4 GiB cap)
// and a "small" one (h2e2eCap), the client of the front protocol, and the
// backend's sink reports.
type h2e2e struct {
	cell       h2Cell
	big, small string
	client     *http.Client
	sink       chan bool
}

func startH2Cell(t *testing.T, cell h2Cell) *h2e2e {
	t.Helper()
	site := &h2e2eSite{sink: make(chan bool, 1)}
	var be string
	switch cell.back {
	case "h1":
		be = "address = \"" + backend(t, site) + "\"\nprotocol = \"h1\""
	case "h2":
		be = "address = \"" + h2Backend(t, site, "", "") + "\"\nprotocol = \"h2\""
	}
	listener := func(name string, limit int64) string {
		return h1Listener(name, "[listeners.http]\nmax_body_bytes = "+strconv.FormatInt(limit, 10)+"\n[[listeners.backends]]\n"+be)
	}
	g := startGateway(t, listener("big", 4<<30)+listener("small", h2e2eCap))
	x := &h2e2e{cell: cell, big: g.url("big"), small: g.url("small"), sink: site.sink}
	if cell.front == "h2" {
		x.client = h2cClient(t)
	} else {
		x.client = client(t)
	}
	return x
}

// wantProtos checks that the response crossed the cell's protocols.
func (x *h2e2e) wantProtos(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	front, back := "HTTP/1.1", "HTTP/1.1"
	if x.cell.front == "h2" {
		front = "HTTP/2.0"
	}
	if x.cell.back == "h2" {
		back = "HTTP/2.0"
	}
	if resp.Proto != front || string(body) != "hello "+back {
		t.Fatalf("client saw %s %q, want %s %q", resp.Proto, body, front, "hello "+back)
	}
}

// unsized hides a reader's length, so the client streams the body
// without a content-length.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

func forEachH2Cell(t *testing.T, f func(t *testing.T, x *h2e2e)) {
	for _, cell := range h2Cells {
		t.Run(cell.name, func(t *testing.T) { f(t, startH2Cell(t, cell)) })
	}
}

func TestH2E2E_SmallRequests(t *testing.T) {
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		for i := range 20 {
			resp, err := x.client.Get(x.big + "/small")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
			x.wantProtos(t, resp, body)
		}
		resp, err := x.client.Get(x.big + "/missing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("backend 404 came through as %d", resp.StatusCode)
		}
	})
}

func TestH2E2E_Echo32MiB(t *testing.T) {
	payload := make([]byte, 32<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		resp, err := x.client.Post(x.big+"/echo", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("echo: %d bytes (%v), want the %d sent", len(got), err, len(payload))
		}
	})
}

func TestH2E2E_TrailersBothWays(t *testing.T) {
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		req, _ := http.NewRequest("POST", x.big+"/echo", unsized{strings.NewReader("with trailers")})
		req.Trailer = http.Header{"X-Req-Trailer": {"v1"}}
		resp, err := x.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "with trailers" {
			t.Fatalf("body %q (%v)", body, err)
		}
		if got := resp.Trailer.Get("X-Echo-Trailer"); got != "v1" {
			t.Fatalf("the request trailer did not make the round trip: response trailers %v", resp.Trailer)
		}
	})
}

func TestH2E2E_BodyOverCap_413BeforeTheHeadResetAfter(t *testing.T) {
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		// A declared length over the cap: 413, the backend sees nothing.
		// The client waits for 100-continue, as a client uploading a large
		// body should: an HTTP/1.1 connection answered early is closed
		// under a writer that does not wait.
		req, _ := http.NewRequest("POST", x.small+"/sink", bytes.NewReader(make([]byte, 2*h2e2eCap)))
		req.Header.Set("Expect", "100-continue")
		resp, err := x.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != 413 {
			t.Fatalf("declared body over the cap: %v %v, want 413", resp, err)
		}
		select {
		case <-x.sink:
			t.Fatal("a body refused with 413 reached the backend")
		default:
		}
		// An undeclared length crossing the cap mid-stream: the head is
		// forwarded, then the body is cut; the backend must see an abort.
		resp, err = x.client.Post(x.small+"/sink", "application/octet-stream", unsized{bytes.NewReader(make([]byte, 4*h2e2eCap))})
		if err == nil {
			_, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				t.Fatal("the client got a clean 200 for a body over the cap")
			}
		}
		select {
		case ok := <-x.sink:
			if ok {
				t.Fatal("the backend saw a body over the cap as complete")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the backend never saw the cut body end")
		}
	})
}

func TestH2E2E_BackendDyingMidBodyReachesTheClientAsAReset(t *testing.T) {
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		resp, err := x.client.Get(x.big + "/die")
		if err != nil {
			return // reset before the head: also never a clean end
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("a body cut at %d of 100000 bytes reached the client as a clean end", len(got))
		}
	})
}

// TestH2E2E_1GiBSlowReaderStaysBounded streams 1 GiB down through every
// cell (64 MiB under -short or the race detector) and a quarter of that
// up; the download's reader is slow at first so every link fills. The bus's in-flight bytes
// and the process heap must stay far below what streamed.
func TestH2E2E_1GiBSlowReaderStaysBounded(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	forEachH2Cell(t, func(t *testing.T, x *h2e2e) {
		runtime.GC() // what earlier tests left is not this test's heap
		var peak, peakHeap int64
		heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		sample := func() {
			peak = max(peak, globalBudget.Used())
			metrics.Read(heap)
			peakHeap = max(peakHeap, int64(heap[0].Value.Uint64()))
		}
		// The upload is a quarter of the size (CI time); the download, with
		// the slow reader, is the full size.
		up := size / 4
		resp, err := x.client.Post(x.big+"/sink", "application/octet-stream", &zeroReader{n: up, tick: sample})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), strconv.FormatInt(up, 10)+" ") {
			t.Fatalf("upload: backend got %q", b)
		}
		<-x.sink
		resp, err = x.client.Get(x.big + "/down?n=" + strconv.FormatInt(size, 10))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256<<10)
		var got int64
		for i := 0; ; i++ {
			n, err := resp.Body.Read(buf)
			got += int64(n)
			if i%16 == 0 {
				sample()
			}
			if i < 50 {
				time.Sleep(2 * time.Millisecond) // slow at first: the links fill
			}
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if got != size {
			t.Fatalf("download: %d bytes, want %d", got, size)
		}
		// Each direction of the stream holds at most its link budget (or
		// the stream window, when larger) plus one frame: a few MiB at
		// most, against the GiB that crossed.
		if limit := int64(4 << 20); peak > limit {
			t.Fatalf("in-flight bus bytes peaked at %d, over %d", peak, limit)
		}
		if heapLimit := int64(128 << 20); size >= 1<<30 && peakHeap > heapLimit {
			t.Fatalf("heap peaked at %d MiB streaming %d MiB", peakHeap>>20, size>>20)
		}
		t.Logf("streamed %d MiB down; bus in-flight peak %d KiB, heap peak %d MiB", size>>20, peak>>10, peakHeap>>20)
	})
}

// TestH2E2E_TLSBackendWithVerification proxies H1 and H2 fronts to an
// HTTP/2 backend over TLS whose certificate is checked against a CA file;
// the same backend behind the wrong CA is refused (502).
func TestH2E2E_TLSBackendWithVerification(t *testing.T) {
	cert, key := writeCert(t, t.TempDir(), "backend")
	other, _ := writeCert(t, t.TempDir(), "other")
	be := h2Backend(t, &h2e2eSite{sink: make(chan bool, 1)}, cert, key)
	g := startGateway(t, h1Listener("good", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h2"
tls = true
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`)+h1Listener("bad", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h2"
tls = true
tls_ca_path = "`+other+`"
tls_verify_hostname = "localhost"`))
	for _, front := range []string{"h1", "h2"} {
		t.Run(front, func(t *testing.T) {
			c := client(t)
			want := "HTTP/1.1"
			if front == "h2" {
				c, want = h2cClient(t), "HTTP/2.0"
			}
			resp, err := c.Get(g.url("good") + "/small")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != want || string(body) != "hello HTTP/2.0" {
				t.Fatalf("good CA: %d %s %q", resp.StatusCode, resp.Proto, body)
			}
			resp, err = c.Get(g.url("bad") + "/small")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 502 {
				t.Fatalf("a backend certificate from the wrong CA: %d, want 502", resp.StatusCode)
			}
		})
	}
}

// realClientGateway starts an h2c listener and an h1s listener (ALPN h2)
// in front of an HTTP/2 backend; it returns their addresses.
func realClientGateway(t *testing.T) (h2c, h1s string) {
	t.Helper()
	be := h2Backend(t, &h2e2eSite{sink: make(chan bool, 1)}, "", "")
	cert, key := writeCert(t, t.TempDir(), "localhost")
	backends := "[[listeners.backends]]\naddress = \"" + be + "\"\nprotocol = \"h2\"\n"
	g := startGateway(t, h1Listener("h2c", backends)+`
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
`+backends)
	return g.Addr("h2c").String(), g.Addr("tls").String()
}

// tool returns the path of a client binary, skipping the test when it is
// missing (failing instead under EG_REQUIRE_TOOLS=1).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (EG_REQUIRE_TOOLS=1) but missing", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// runTool runs a client subprocess with a bound on its time and returns
// its stdout; a non-zero exit fails the test.
func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), args, err, out.String(), errOut.String())
	}
	return out.String()
}

func TestH2E2E_Curl(t *testing.T) {
	curl := tool(t, "curl")
	h2c, h1s := realClientGateway(t)
	for _, tc := range []struct {
		name string
		args []string
		url  string
	}{
		{"h2c prior knowledge", []string{"--http2-prior-knowledge"}, "http://" + h2c},
		{"h1s ALPN h2", []string{"--http2", "-k"}, "https://" + h1s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := append([]string{"-sS", "--max-time", "30", "-w", "\n%{http_code} %{http_version}"}, tc.args...)
			out := runTool(t, curl, append(base, tc.url+"/small")...)
			if out != "hello HTTP/2.0\n200 2" {
				t.Fatalf("GET: %q", out)
			}
			payload := strings.Repeat("curl-body;", 10000)
			out = runTool(t, curl, append(base, "--data-binary", payload, tc.url+"/echo")...)
			if out != payload+"\n200 2" {
				t.Fatalf("POST echo: %d bytes back, tail %q", len(out), out[max(0, len(out)-20):])
			}
		})
	}
}

func TestH2E2E_Nghttp(t *testing.T) {
	nghttp := tool(t, "nghttp")
	h2c, h1s := realClientGateway(t)
	for _, url := range []string{"http://" + h2c, "https://" + h1s} {
		// Without -u, nghttp speaks h2c with prior knowledge.
		out := runTool(t, nghttp, "-t", "30", url+"/small")
		if out != "hello HTTP/2.0" {
			t.Fatalf("%s: %q", url, out)
		}
		// -s prints the stream statistics (status per stream); four
		// concurrent streams on one connection (nghttp merges identical
		// URIs, hence the queries).
		out = runTool(t, nghttp, "-t", "30", "-s", "-n", url+"/small?1", url+"/small?2", url+"/small?3", url+"/small?4")
		if n := len(nghttpOK.FindAllString(out, -1)); n != 4 {
			t.Fatalf("%s: %d streams answered 200, want 4:\n%s", url, n, out)
		}
	}
}

var nghttpOK = regexp.MustCompile(`(?m) 200 +14 /small\?\d$`)

var h2loadSummary = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)

func TestH2E2E_H2load(t *testing.T) {
	h2load := tool(t, "h2load")
	h2c, h1s := realClientGateway(t)
	for _, url := range []string{"http://" + h2c, "https://" + h1s} {
		out := runTool(t, h2load, "-n", "2000", "-c", "4", "-m", "16", url+"/small")
		m := h2loadSummary.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no h2load summary:\n%s", url, out)
		}
		if m[1] != "2000" || m[4] != "2000" || m[5] != "0" || m[6] != "0" {
			t.Fatalf("%s: %s", url, m[0])
		}
		if !strings.Contains(out, "2000 2xx") {
			t.Fatalf("%s: not every status was 2xx:\n%s", url, out)
		}
	}
}
