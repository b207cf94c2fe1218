package pipeline

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/bus"
)

// The 9-cell matrix: every front protocol (a real client) to
// every backend protocol (a real server), through one pipeline.

// matrixBackend is a backend server and the config keys that reach it.
type matrixBackend struct {
	proto string
	conf  string // [[listeners.backends]] keys
	// sinkDone reports, for /sink-after-head, whether the backend read the
	// request body to a clean end.
	sinkDone chan bool
}

// matrixHandler serves every case of the matrix.
func matrixHandler(sinkDone chan bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			fmt.Fprintf(w, "small %s", r.Proto)
		case "/echo":
			http.NewResponseController(w).EnableFullDuplex()
			w.Header().Set("Content-Type", "application/octet-stream")
			io.Copy(w, r.Body)
		case "/stream":
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			buf := make([]byte, 64<<10)
			for sent := int64(0); sent < n; {
				k := min(int64(len(buf)), n-sent)
				if _, err := w.Write(buf[:k]); err != nil {
					return
				}
				sent += k
			}
		case "/trailers":
			w.Header().Set("Trailer", "X-Resp-Sum")
			n, _ := io.Copy(io.Discard, r.Body)
			w.Write([]byte("ok"))
			w.Header().Set("X-Resp-Sum", r.Trailer.Get("X-Req-Sum")+"|"+strconv.FormatInt(n, 10))
		case "/sink-after-head":
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			_, err := io.Copy(io.Discard, r.Body)
			select {
			case sinkDone <- err == nil:
			default:
			}
		case "/die":
			w.Header().Set("Content-Length", strconv.Itoa(1<<20))
			w.Write(make([]byte, 64<<10))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		default:
			http.NotFound(w, r)
		}
	})
}

func startMatrixBackend(t *testing.T, proto string) *matrixBackend {
	b := &matrixBackend{proto: proto, sinkDone: make(chan bool, 1)}
	b.conf = backendOf(t, proto, matrixHandler(b.sinkDone))
	return b
}

// backendOf starts a backend of protocol proto serving h and returns its
// [[listeners.backends]] keys.
func backendOf(t *testing.T, proto string, h http.Handler) string {
	switch proto {
	case "h1":
		return "address = \"" + backend(t, h) + "\"\nprotocol = \"h1\""
	case "h2":
		return "address = \"" + h2cBackend(t, h) + "\"\nprotocol = \"h2\""
	case "h3":
		addr, cert := h3Backend(t, h)
		return "address = \"" + addr + "\"\nprotocol = \"h3\"\ntls_ca_path = \"" + cert + "\"\ntls_verify_hostname = \"localhost\""
	}
	t.Fatalf("backend protocol %q", proto)
	return ""
}

// h2cBackend starts net/http's bundled x/net/http2 server speaking h2c
// (prior knowledge) on loopback.
func h2cBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// matrixFront is a gateway listener pair of one front protocol with the
// client that speaks it: "big" runs on default settings, "small" has a
// small request body cap.
type matrixFront struct {
	proto       string
	big, small  string // base URLs
	client      *http.Client
	multiplexed bool
}

const matrixSmallCap = 1 << 20

func startMatrixFront(t *testing.T, proto string, be *matrixBackend) *matrixFront {
	backends := "[[listeners.backends]]\n" + be.conf + "\n"
	capped := func(n int64) string { return "[listeners.http]\nmax_body_bytes = " + strconv.FormatInt(n, 10) + "\n" }
	f := &matrixFront{proto: proto}
	switch proto {
	case "h1", "h2":
		g := startGateway(t, h1Listener("big", backends)+h1Listener("small", capped(matrixSmallCap)+backends))
		f.big, f.small = g.url("big"), g.url("small")
		if proto == "h1" {
			f.client = client(t)
		} else {
			// net/http's bundled x/net/http2 client, h2c prior knowledge.
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &p, DisableCompression: true}
			t.Cleanup(tr.CloseIdleConnections)
			f.client = &http.Client{Transport: tr, Timeout: 120 * time.Second}
			f.multiplexed = true
		}
	case "h3":
		files := newH3Files(t)
		g := startGateway(t, quicListener("big", files, "", backends)+quicListener("small", files, "", capped(matrixSmallCap)+backends))
		f.big, f.small = g.h3URL("big"), g.h3URL("small")
		f.client, _ = h3Client(t, files.cert)
		f.multiplexed = true
	}
	return f
}

// h2Ready reports whether the HTTP/2 front and transport exist in this
// build; the H2 cells run once they do.
const h2Ready = true

func TestMatrix_NineCells(t *testing.T) {
	for _, front := range []string{"h1", "h2", "h3"} {
		for _, back := range []string{"h1", "h2", "h3"} {
			t.Run(front+"_to_"+back, func(t *testing.T) {
				if !h2Ready && (front == "h2" || back == "h2") {
					t.Skip("HTTP/2 front or transport not in this build yet")
				}
				be := startMatrixBackend(t, back)
				fr := startMatrixFront(t, front, be)
				t.Run("get_small", func(t *testing.T) { matrixGetSmall(t, fr, back) })
				t.Run("post_echo", func(t *testing.T) { matrixEcho(t, fr) })
				t.Run("trailers_both_ways", func(t *testing.T) { matrixTrailers(t, fr) })
				t.Run("body_over_cap", func(t *testing.T) { matrixOverCap(t, fr, be) })
				t.Run("backend_dies_mid_body", func(t *testing.T) { matrixBackendDies(t, fr) })
				if fr.multiplexed {
					t.Run("100_concurrent_streams", func(t *testing.T) { matrixConcurrent(t, fr) })
				}
				t.Run("slow_reader_bounded", func(t *testing.T) { matrixSlowReader(t, fr) })
			})
		}
	}
}

func matrixGetSmall(t *testing.T, fr *matrixFront, back string) {
	resp, err := fr.client.Get(fr.big + "/small")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantProto := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2.0", "h3": "HTTP/3.0"}[back]
	if resp.StatusCode != 200 || string(body) != "small "+wantProto {
		t.Fatalf("%d %q (want backend proto %s)", resp.StatusCode, body, wantProto)
	}
	if !strings.Contains(resp.Header.Get("Via"), "expressgateway") {
		t.Fatalf("no Via: %v", resp.Header)
	}
}

func matrixEcho(t *testing.T, fr *matrixFront) {
	size := 32 << 20
	if testing.Short() || raceEnabled {
		size = 4 << 20
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	want := sha256.Sum256(payload)
	resp, err := fr.client.Post(fr.big+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo: %d bytes of %d, err %v", n, size, err)
	}
}

// hideLen hides a reader's length so clients send it as a stream of
// unknown length (chunked in H1), which can carry trailers.
type hideLen struct{ r io.Reader }

func (h hideLen) Read(p []byte) (int, error) { return h.r.Read(p) }

func matrixTrailers(t *testing.T, fr *matrixFront) {
	body := strings.Repeat("t", 100_000)
	req, _ := http.NewRequest("POST", fr.big+"/trailers", hideLen{strings.NewReader(body)})
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Req-Sum": {"abc"}}
	resp, err := fr.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(got) != "ok" {
		t.Fatalf("%d %q %v", resp.StatusCode, got, err)
	}
	if v := resp.Trailer.Get("X-Resp-Sum"); v != "abc|100000" {
		t.Fatalf("response trailer %q (want abc|100000: request trailer and body length seen by the backend); trailers %v", v, resp.Trailer)
	}
}

func matrixOverCap(t *testing.T, fr *matrixFront, be *matrixBackend) {
	// Declared length over the cap: 413 before anything is forwarded.
	payload := make([]byte, matrixSmallCap+1)
	resp, err := fr.client.Post(fr.small+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("declared over cap: %d, want 413", resp.StatusCode)
		}
	}
	// Unknown length crossing the cap after the backend sent its head: the
	// backend never sees a complete body, and the client never sees a
	// clean success.
	for len(be.sinkDone) > 0 {
		<-be.sinkDone
	}
	req, _ := http.NewRequest("POST", fr.small+"/sink-after-head", hideLen{bytes.NewReader(make([]byte, 4*matrixSmallCap))})
	req.ContentLength = -1
	resp, err = fr.client.Do(req)
	if err == nil {
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && rerr == nil {
			t.Fatal("body over the cap ended as a clean 200")
		}
	}
	select {
	case complete := <-be.sinkDone:
		if complete {
			t.Fatal("backend saw a body over the cap as complete")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("backend handler never finished")
	}
}

func matrixBackendDies(t *testing.T, fr *matrixFront) {
	resp, err := fr.client.Get(fr.big + "/die")
	if err != nil {
		return // an abort before the head is an abort too
	}
	if resp.StatusCode != 200 {
		// The backend died before the gateway had its head: an error
		// status, never a truncated 200.
		resp.Body.Close()
		return
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("backend died mid-body but the client saw a clean end after %d bytes", n)
	}
}

func matrixConcurrent(t *testing.T, fr *matrixFront) {
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			resp, err := fr.client.Get(fr.big + "/small?i=" + strconv.Itoa(i))
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "small ") {
				errs <- fmt.Errorf("stream %d: %d %q", i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func matrixSlowReader(t *testing.T, fr *matrixFront) {
	size := int64(1 << 30)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse
	var peakBus int64
	var peakHeap uint64
	sample := func(mem bool) {
		if n := globalBudget.Used(); n > peakBus {
			peakBus = n
		}
		if mem {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	resp, err := fr.client.Get(fr.big + "/stream?n=" + strconv.FormatInt(size, 10))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var got int64
	for i := 0; ; i++ {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		sample(i%512 == 0)
		if i < 40 {
			time.Sleep(2 * time.Millisecond) // slow at first: the links fill up
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after %d bytes: %v", got, err)
			}
			break
		}
	}
	resp.Body.Close()
	if got != size {
		t.Fatalf("streamed %d bytes, want %d", got, size)
	}
	// A stream's two links hold at most their budget each, plus one
	// oversize frame: far below what streamed through.
	if limit := int64(4 * bus.DefaultStreamBytes); peakBus > limit {
		t.Fatalf("in-flight bus bytes peaked at %d, over %d", peakBus, limit)
	}
	if peakHeap > heap0 && peakHeap-heap0 > 256<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB", (peakHeap-heap0)>>20, size>>20)
	}
	t.Logf("streamed %d MiB on default settings; bus in-flight peak %d KiB, heap growth %d MiB", size>>20, peakBus>>10, (int64(peakHeap)-int64(heap0))>>20)
}
