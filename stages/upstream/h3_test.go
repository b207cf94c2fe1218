package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/route"
)

// h3Peer is a real HTTP/3 server (quic-go's) on loopback, adjusted by
// opts, and a backend that trusts its certificate.
func h3Peer(t *testing.T, h http.Handler, opts ...func(*http3.Server)) *route.Backend {
	t.Helper()
	certPEM, keyPEM, err := testcert.Generate("backend")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}})}
	for _, o := range opts {
		o(srv)
	}
	done := make(chan struct{})
	go func() { srv.Serve(pc); close(done) }()
	t.Cleanup(func() { srv.Close(); pc.Close(); <-done })
	cfg := conf.Pool{Name: "t", Backends: []conf.Backend{{Address: pc.LocalAddr().String(), Protocol: "h3"}}}
	if err := cfg.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := route.NewPool(cfg, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	b := p.Backends()[0]
	b.Opts = &BackendOpts{TLS: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}
	return b
}

func testH3(t *testing.T) *H3 {
	tr := &H3{Opts: Options{ConnectTimeout: 5 * time.Second, HeadTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second},
		StreamWindow: bus.DefaultStreamBytes, ConnWindow: bus.DefaultConnBytes}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// getHead is a GET as the stream actor hands it to the H3 transport.
func getHead(path string) *frames.Head {
	h := get(path)
	h.Scheme = "https"
	return h
}

func TestH3_GetPostTrailersHeadOverOneConnection(t *testing.T) {
	b := h3Peer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Trailer", "X-Sum")
			body, _ := io.ReadAll(r.Body)
			w.Write(body)
			w.Header().Set("X-Sum", r.Trailer.Get("X-Client"))
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Seen-Authority", r.Host)
			io.WriteString(w, "hello "+r.URL.Path)
		}
	}))
	tr := testH3(t)
	ctx := context.Background()
	for i := range 3 {
		resp, err := tr.RoundTrip(ctx, b, getHead("/p"), nil2(t))
		if err != nil {
			t.Fatal(err)
		}
		body, _, err := readAll(t, resp)
		resp.Close(false)
		if err != nil || resp.Head.Status != 200 || string(body) != "hello /p" || resp.Head.Fields.Value("x-seen-authority") != "backend" {
			t.Fatalf("GET %d: %d %q %v %v", i, resp.Head.Status, body, err, resp.Head.Fields)
		}
	}
	if n := b.Conns(); n != 1 {
		t.Fatalf("%d connections for three requests, want 1 (multiplexed)", n)
	}
	// POST with a streamed body and trailers both ways.
	link := bus.NewLink(bus.DefaultStreamBytes, nil)
	req := &frames.Head{Method: "POST", Scheme: "https", Authority: "backend", Path: "/echo", ContentLength: -1}
	go func() {
		for range 20 {
			link.Send(ctx, frames.CopyData([]byte(strings.Repeat("x", 10000)), false))
		}
		link.Send(ctx, frames.TrailersFrame(frames.Fields{{Name: "x-client", Value: "42"}}))
		link.Close(io.EOF)
	}()
	resp, err := tr.RoundTrip(ctx, b, req, link)
	if err != nil {
		t.Fatal(err)
	}
	body, trailers, err := readAll(t, resp)
	resp.Close(false)
	if err != nil || len(body) != 200000 || trailers.Value("x-sum") != "42" || resp.Head.ContentLength != -1 {
		t.Fatalf("POST: %d bytes, trailers %v, %v, cl %d", len(body), trailers, err, resp.Head.ContentLength)
	}
	// HEAD: the declared length, no body.
	h := getHead("/p")
	h.Method = "HEAD"
	resp, err = tr.RoundTrip(ctx, b, h, nil2(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _, err = readAll(t, resp)
	resp.Close(false)
	if err != nil || len(body) != 0 || resp.Head.Status != 200 {
		t.Fatalf("HEAD: %q %v", body, err)
	}
}

// nil2 is the ended body link of a bodiless request.
func nil2(t *testing.T) *bus.Link {
	l := bus.NewLink(0, nil)
	l.Close(io.EOF)
	return l
}

func TestH3_InterimHeadsReachTheHook(t *testing.T) {
	b := h3Peer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "done")
	}))
	tr := testH3(t)
	var got []int
	ctx := WithInterim(context.Background(), func(h *frames.Head) { got = append(got, h.Status) })
	resp, err := tr.RoundTrip(ctx, b, getHead("/"), nil2(t))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close(false)
	if len(got) != 1 || got[0] != 103 || resp.Head.Status != 200 {
		t.Fatalf("interim %v, final %d", got, resp.Head.Status)
	}
}

func TestH3_HeadTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan error, 4)
	b := h3Peer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			seen <- r.Context().Err()
		}
	}))
	defer close(release)
	tr := testH3(t)
	tr.Opts.HeadTimeout = 200 * time.Millisecond
	if _, err := tr.RoundTrip(context.Background(), b, getHead("/slow"), nil2(t)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow head: %v, want ErrTimeout", err)
	}
	tr.Opts.HeadTimeout = 10 * time.Second
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("client went away")
	time.AfterFunc(100*time.Millisecond, func() { cancel(cause) })
	if _, err := tr.RoundTrip(ctx, b, getHead("/slow"), nil2(t)); !errors.Is(err, cause) {
		t.Fatalf("canceled: %v, want the context's cause", err)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never saw the request canceled")
	}
}

// A server that refuses a stream with H3_REQUEST_REJECTED (RFC 9114
// §4.1.1: it did not process it): the error says the request may go to
// another backend, whatever its method.
func TestH3_RequestRejectedIsRetryable(t *testing.T) {
	b := h3Peer(t, http.NotFoundHandler())
	// Replace the HTTP/3 server's answer with a raw QUIC server of ours
	// that rejects every request stream.
	certPEM, keyPEM, _ := testcert.Generate("backend")
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		for {
			str, err := qc.AcceptStream(context.Background())
			if err != nil {
				return
			}
			str.CancelRead(quic.StreamErrorCode(0x10b))
			str.CancelWrite(quic.StreamErrorCode(0x10b))
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	b.Address = ln.Addr().String()
	b.Opts = &BackendOpts{TLS: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}
	tr := testH3(t)
	_, err = tr.RoundTrip(context.Background(), b, getHead("/"), nil2(t))
	var re *route.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("H3_REQUEST_REJECTED: %v, want a RefusedError", err)
	}
}

func TestH3_ClientBodyResetAbortsTheStream(t *testing.T) {
	started := make(chan struct{})
	got := make(chan error, 1)
	b := h3Peer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 7)
		io.ReadFull(r.Body, buf)
		close(started)
		_, err := io.ReadAll(r.Body)
		got <- err
	}))
	tr := testH3(t)
	ctx := context.Background()
	link := bus.NewLink(bus.DefaultStreamBytes, nil)
	link.Send(ctx, frames.CopyData([]byte("partial"), false))
	req := &frames.Head{Method: "POST", Scheme: "https", Authority: "backend", Path: "/", ContentLength: 100}
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(ctx, b, req, link)
		if err == nil {
			resp.Close(true)
		}
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never got the body's start")
	}
	link.Send(ctx, frames.ResetFrame(frames.CodeCancel))
	link.Close(&frames.ResetError{Code: frames.CodeCancel})
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("the backend read a cut body as complete")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's read never ended")
	}
	var re *frames.ResetError
	if err := <-done; !errors.As(err, &re) {
		t.Fatalf("round trip: %v, want the client's reset as the cause", err)
	}
}
