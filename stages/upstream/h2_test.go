package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/route"
)

// serve accepts on a loopback listener and hands each connection to fn;
// Cleanup closes the listener and the connections and waits for fn.
func serve(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { fn(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// h2cBackend is Go's HTTP/2 server (x/net/http2's, bundled in net/http)
// speaking h2c with prior knowledge, running h.
func h2cBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
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

// h2Transport returns a transport and a backend at addr; Cleanup closes
// the transport's connections.
func h2Transport(t *testing.T, addr string) (*H2, *route.Backend) {
	tr := &H2{Opts: Options{ConnectTimeout: 5 * time.Second, HeadTimeout: 10 * time.Second, BodyTimeout: 10 * time.Second}}
	t.Cleanup(tr.Close)
	pool, err := route.NewPool(conf.Pool{Name: "p", Backends: []conf.Backend{{Address: addr, Protocol: "h2"}}}, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	b := pool.Backends()[0]
	b.Opts = NewBackendOpts(nil)
	return tr, b
}

func get(path string) *frames.Head {
	return &frames.Head{Method: "GET", Scheme: "http", Authority: "backend", Path: path, ContentLength: 0}
}

// readAll reads a response body to its end: the bytes, the trailers and
// the error that cut it, if any.
func readAll(t *testing.T, resp *Response) (body []byte, trailers frames.Fields, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := resp.Next(ctx)
		if err != nil {
			return body, trailers, err
		}
		switch f.Kind {
		case frames.KindData:
			body = append(body, f.Data...)
		case frames.KindTrailers:
			return body, f.Head.Fields, nil
		}
		end := f.End
		f.Release()
		if end {
			return body, trailers, nil
		}
	}
}

func TestH2_RoundTripWithTrailers(t *testing.T) {
	tr, b := h2Transport(t, h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Write([]byte("hello " + r.URL.Path))
		w.Header().Set("Grpc-Status", "0")
	})))
	for i := range 3 { // the second and third reuse the connection
		resp, err := tr.RoundTrip(context.Background(), b, get("/x"), endedLink())
		if err != nil {
			t.Fatal(err)
		}
		body, trailers, err := readAll(t, resp)
		resp.Close(err != nil)
		if st, _ := trailers.Get("grpc-status"); err != nil || string(body) != "hello /x" || st != "0" {
			t.Fatalf("request %d: body %q, trailers %v, err %v", i, body, trailers, err)
		}
	}
}

func endedLink() *bus.Link {
	l := bus.NewLink(0, nil)
	l.Close(io.EOF)
	return l
}

// A request body larger than every window crosses intact: the writer
// sends within the backend's windows as its WINDOW_UPDATEs come, and the
// body link gets all its credit back.
func TestH2_LargeBodyEchoes(t *testing.T) {
	tr, b := h2Transport(t, h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})))
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	budget := bus.NewBudget(1<<20, nil)
	body := bus.NewLink(256<<10, budget)
	go func() {
		for off := 0; off < len(payload); off += frames.MaxDataChunk {
			f := frames.CopyData(payload[off:off+frames.MaxDataChunk], off+frames.MaxDataChunk == len(payload))
			if body.Send(context.Background(), f) != nil {
				return
			}
		}
		body.Close(io.EOF)
	}()
	req := &frames.Head{Method: "POST", Scheme: "http", Authority: "backend", Path: "/echo", ContentLength: int64(len(payload))}
	resp, err := tr.RoundTrip(context.Background(), b, req, body)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(t, resp)
	resp.Close(err != nil)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes (%v), want the %d sent", len(got), err, len(payload))
	}
	if u := budget.Used(); u != 0 {
		t.Errorf("body budget holds %d bytes after the exchange", u)
	}
}

// A backend answer whose HEADERS end the stream (gRPC's trailers-only
// error) is a response whose head is its end: no body follows.
func TestH2_TrailersOnlyResponseEndsAtTheHead(t *testing.T) {
	tr, b := h2Transport(t, h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "5")
		w.WriteHeader(200)
	})))
	resp, err := tr.RoundTrip(context.Background(), b, get("/svc/Method"), endedLink())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close(false)
	if st, _ := resp.Head.Fields.Get("grpc-status"); !resp.End || st != "5" {
		t.Fatalf("End %v, fields %v; want the head to end the response with grpc-status 5", resp.End, resp.Head.Fields)
	}
}

// rawBackend answers each request on the connection with fn, writing
// frames itself (x/net's server cannot send every reset code).
func rawBackend(t *testing.T, fn func(fr *http2.Framer, id uint32)) string {
	return serve(t, func(c net.Conn) {
		buf := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.WriteSettings()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.MetaHeadersFrame:
				fn(fr, f.StreamID)
			}
		}
	})
}

func headBlock(fields ...string) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for i := 0; i < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return b.Bytes()
}

// A backend's RST_STREAM after the head cuts the body with the neutral
// form of its code: CANCEL stays a cancel (the proxy relays it as such).
func TestH2_BackendResetKeepsItsCode(t *testing.T) {
	tr, b := h2Transport(t, rawBackend(t, func(fr *http2.Framer, id uint32) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headBlock(":status", "200"), EndHeaders: true})
		fr.WriteData(id, false, []byte("part"))
		fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}))
	resp, err := tr.RoundTrip(context.Background(), b, get("/"), endedLink())
	if err != nil {
		t.Fatal(err)
	}
	body, _, err := readAll(t, resp)
	resp.Close(true)
	var re *frames.ResetError
	if !errors.As(err, &re) || re.Code != frames.CodeCancel {
		t.Fatalf("body %q ended with %v, want a reset with code cancel", body, err)
	}
}

// A request body the client cut (a Reset on the body link) reaches the
// backend as RST_STREAM(CANCEL), never as a complete body, and the round
// trip ends at once with the client's cause. A body cut before anything
// went out never reaches the backend at all.
func TestH2_CutBodyResetsTheStream(t *testing.T) {
	started := make(chan struct{}, 1)
	backendSaw := make(chan error, 1)
	tr, b := h2Transport(t, h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		_, err := io.ReadAll(r.Body)
		backendSaw <- err
	})))
	ctx := context.Background()
	req := &frames.Head{Method: "POST", Scheme: "http", Authority: "backend", Path: "/", ContentLength: -1}
	cut := func(body *bus.Link) {
		body.Send(ctx, frames.ResetFrame(frames.CodeTooLarge))
		body.Close(&frames.ResetError{Code: frames.CodeTooLarge})
	}
	wantCut := func(err error) {
		t.Helper()
		var re *frames.ResetError
		if !errors.As(err, &re) || re.Code != frames.CodeTooLarge {
			t.Fatalf("round trip: %v, want the client's reset (too large)", err)
		}
	}

	body := bus.NewLink(256<<10, nil)
	body.Send(ctx, frames.CopyData([]byte("some of the body"), false))
	go func() {
		<-started
		cut(body)
	}()
	_, err := tr.RoundTrip(ctx, b, req, body)
	wantCut(err)
	select {
	case err := <-backendSaw:
		if err == nil {
			t.Fatal("the backend read the cut body as complete")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never heard of the reset")
	}

	early := bus.NewLink(256<<10, nil)
	cut(early)
	_, err = tr.RoundTrip(ctx, b, req.Clone(), early)
	wantCut(err)
	// The next request on the connection is the backend's next stream.
	resp, err := tr.RoundTrip(ctx, b, get("/after"), endedLink())
	if err != nil {
		t.Fatal(err)
	}
	resp.Close(false)
	select {
	case <-started:
		if err := <-backendSaw; err != nil {
			t.Fatalf("bodiless request after the cut one: backend read %v", err)
		}
	default:
		t.Fatal("the backend never saw the request after the cut one")
	}
}

// A connect is timed into the connect histogram by backend and protocol,
// once per connection, not per request.
func TestH2_ConnectIsTimedPerConnection(t *testing.T) {
	tr, b := h2Transport(t, h2cBackend(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	series := `expressgateway_upstream_connect_duration_seconds_count{backend="` + b.Address + `",protocol="h2"} `
	count := func() int {
		var buf bytes.Buffer
		metrics.WritePrometheus(&buf, false)
		for _, ln := range strings.Split(buf.String(), "\n") {
			if v, ok := strings.CutPrefix(ln, series); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return 0
	}
	// The histogram is process-wide and keyed by address: an earlier
	// test's backend may have had this port, so only the change counts.
	before := count()
	for range 3 {
		resp, err := tr.RoundTrip(context.Background(), b, get("/"), endedLink())
		if err != nil {
			t.Fatal(err)
		}
		resp.Close(false)
	}
	if n := count() - before; n != 1 {
		t.Fatalf("%d connects timed for 3 requests on one connection, want 1", n)
	}
}
