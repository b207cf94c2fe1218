package pipeline

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-seen-xff", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("x-seen-host", r.Host)
		w.Header().Set("x-seen-via", r.Header.Get("Via"))
		if r.Method == "POST" {
			io.Copy(w, r.Body)
			return
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
}

func TestH1_ProxiesGetAndPostToARealBackend(t *testing.T) {
	be := backend(t, echoHandler())
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	c := client(t)
	for i := range 5 { // keep-alive: several requests on one connection
		resp, err := c.Get(g.url("web") + "/p" + fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("hello /p%d", i) {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
		if resp.Header.Get("x-seen-xff") != "127.0.0.1" || !strings.Contains(resp.Header.Get("x-seen-via"), "expressgateway") {
			t.Fatalf("forwarding headers not set: %v", resp.Header)
		}
		if !strings.Contains(resp.Header.Get("Via"), "expressgateway") {
			t.Fatalf("response Via missing: %v", resp.Header)
		}
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	resp, err := c.Post(g.url("web")+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(payload))
	}
}

func TestH1_PipelinedRequestsAnsweredInOrder(t *testing.T) {
	be := backend(t, echoHandler())
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var reqs strings.Builder
	for i := range 5 {
		fmt.Fprintf(&reqs, "GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	conn.Write([]byte(reqs.String()))
	br := bufio.NewReader(conn)
	for i := range 5 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != fmt.Sprintf("hello /r%d", i) {
			t.Fatalf("response %d: %q", i, body)
		}
	}
}

func TestH1_BodyOverCapGets413BeforeForwarding(t *testing.T) {
	hits := 0
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	g := startGateway(t, h1Listener("web", `
[listeners.http]
max_body_bytes = 1024
[[listeners.backends]]
address = "`+be+`"`))
	resp, err := client(t).Post(g.url("web")+"/", "text/plain", bytes.NewReader(make([]byte, 2048)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || hits != 0 {
		t.Fatalf("status %d, backend hits %d; want 413 and 0", resp.StatusCode, hits)
	}
}

func TestH1_ChunkedBodyOverCapNeverReachesBackendComplete(t *testing.T) {
	complete := make(chan bool, 1)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		complete <- err == nil
	}))
	g := startGateway(t, h1Listener("web", `
[listeners.http]
max_body_bytes = 100000
[[listeners.backends]]
address = "`+be+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("a", 10000)
	for range 20 {
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
			break
		}
	}
	conn.Write([]byte("0\r\n\r\n"))
	select {
	case ok := <-complete:
		if ok {
			t.Fatal("backend saw a complete body past the cap")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend never saw the request end")
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil && resp.StatusCode == 200 {
		t.Fatalf("client got 200 for a body over the cap")
	}
}

func TestH1_BackendCutMidBodyReachesClientAsAbort(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(200)
		w.Write(make([]byte, 50000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the backend dies mid-body
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	resp, err := client(t).Get(g.url("web") + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("a cut backend body reached the client as a clean end")
	}
}

func TestH1_ChunkedUnknownLengthBodyWithTrailersStreams(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 10 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "done")
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	resp, err := client(t).Get(g.url("web") + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "part0;") || !strings.HasSuffix(string(body), "part9;") {
		t.Fatalf("body %q", body)
	}
	if resp.Trailer.Get("X-Sum") != "done" {
		t.Fatalf("trailer lost: %v", resp.Trailer)
	}
}

func TestH1_NoBackendGets502AndDirectResponseAnswers(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	g := startGateway(t, h1Listener("web", `
[[listeners.routes]]
path_prefix = "/api"
  [[listeners.routes.backends]]
  address = "`+dead+`"
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	c := client(t)
	resp, err := c.Get(g.url("web") + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("dead backend: %d, want 502", resp.StatusCode)
	}
	resp, err = c.Get(g.url("web") + "/other")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hi" {
		t.Fatalf("direct: %d %q", resp.StatusCode, b)
	}
}

func TestH1_SlowHeadIsCutAtTheHeaderTimeout(t *testing.T) {
	g := startGateway(t, h1Listener("web", `
[listeners.http]
header_timeout_ms = 300
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\n"))
	// Trickle a byte every 100 ms: each byte arrives in time, the head never does.
	start := time.Now()
	var resp *http.Response
	go func() {
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte("X")); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slowloris head: %v", err)
	}
	if resp.StatusCode != 408 {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("cut after %v: the trickle reset the timeout", time.Since(start))
	}
}

func TestH1_SlowPostIsCutBelowTheMinimumRate(t *testing.T) {
	complete := make(chan bool, 1)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		complete <- err == nil
	}))
	g := startGateway(t, `
[runtime.watchdog]
body_progress_min_bps = 1000
sweep_interval_ms = 100
`+h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 100 {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	select {
	case ok := <-complete:
		if ok {
			t.Fatal("backend saw a slow POST as complete")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow POST was not cut")
	}
}

func TestH1_1GiBStreamsBothWaysWithBoundedMemory(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		buf := make([]byte, 64<<10)
		for sent := int64(0); sent < size; sent += int64(len(buf)) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	g := startGateway(t, h1Listener("web", `
[listeners.http]
max_body_bytes = 2147483648
[[listeners.backends]]
address = "`+be+`"`))
	c := client(t)

	var peak, peakHeap int64
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	sample := func() {
		if n := globalBudget.Used(); n > peak {
			peak = n
		}
		metrics.Read(heap) // no stop-the-world, unlike ReadMemStats
		if h := int64(heap[0].Value.Uint64()); h > peakHeap {
			peakHeap = h
		}
	}
	// Upload: a generator the size of the test, read by the backend.
	resp, err := c.Post(g.url("web")+"/up", "application/octet-stream", &zeroReader{n: size, tick: sample})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), fmt.Sprint(size)+" ") {
		t.Fatalf("upload: backend got %q", b)
	}
	// Download with a slow reader: the gateway must hold back, not buffer.
	resp, err = c.Get(g.url("web") + "/down")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var got int64
	for i := 0; ; i++ {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		sample()
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
	// Two links of one stream may each hold their budget, plus one
	// oversize frame each: far below the bytes that streamed through.
	if limit := int64(4 * 256 << 10); peak > limit {
		t.Fatalf("in-flight bus bytes peaked at %d, over %d", peak, limit)
	}
	// The heap of the whole test process (client, gateway and backend) stays
	// a small fraction of what streamed: no stage holds a body.
	if heapLimit := int64(128 << 20); size >= 1<<30 && peakHeap > heapLimit {
		t.Fatalf("heap peaked at %d MiB streaming %d MiB each way", peakHeap>>20, size>>20)
	}
	t.Logf("streamed %d MiB each way; bus in-flight peak %d KiB, heap peak %d MiB", size>>20, peak>>10, peakHeap>>20)
}

// zeroReader yields n zero bytes, calling tick now and then.
type zeroReader struct {
	n    int64
	tick func()
	i    int
}

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if z.i++; z.i%64 == 0 {
		z.tick()
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}
