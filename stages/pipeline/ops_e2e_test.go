package pipeline

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/conf"
)

func TestDrain_InflightFinishesWithConnectionCloseAndIdleCloses(t *testing.T) {
	release := make(chan struct{})
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Write([]byte("done"))
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	addr := g.Addr("web").String()
	idle, _ := net.Dial("tcp", addr)
	defer idle.Close()
	fmt.Fprintf(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("warm-up: %v", err)
	} else {
		io.ReadAll(resp.Body)
	}
	busy, _ := net.Dial("tcp", addr)
	defer busy.Close()
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the request is in flight

	drained := make(chan struct{})
	go func() { g.Drain(10 * time.Second); close(drained) }()
	// The idle keep-alive connection is closed at once.
	idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := ibr.ReadByte(); err == nil {
		t.Fatal("idle connection got bytes instead of a close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle connection was not closed by the drain")
	}
	// New connections are refused (the listener closes asynchronously).
	refused := false
	for range 40 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if !refused {
		t.Fatal("accepting during drain")
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight request lost in the drain: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "done" || !resp.Close {
		t.Fatalf("in-flight: %q close=%v; want done with Connection: close", body, resp.Close)
	}
	<-drained
}

func TestReload_SwapsBackendsLiveWithoutDroppingConnections(t *testing.T) {
	a := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("A")) }))
	b := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("B")) }))
	mk := func(be string) string {
		return h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)
	}
	g := startGateway(t, mk(a))
	c := client(t)
	get := func() string {
		resp, err := c.Get(g.url("web") + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "A" {
		t.Fatalf("before reload: %q", got)
	}
	dir := t.TempDir()
	// The listener is bound already: reload must keep its address; we give
	// the config the bound address so the reload sees the same listener.
	next := strings.Replace(mk(b), "127.0.0.1:0", g.Addr("web").String(), 1)
	path := filepath.Join(dir, "next.toml")
	os.WriteFile(path, []byte(next), 0o600)
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners[0].Address = g.cfg.Listeners[0].Address // same identity as the running one
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "B" { // same keep-alive client connection
		t.Fatalf("after reload: %q", got)
	}
	bad := *cfg
	bad.Listeners = append([]conf.Listener(nil), cfg.Listeners...)
	bad.Listeners[0].HTTP.HeaderTimeoutMs = -5
	if err := g.Reload(&bad); err == nil {
		t.Fatal("an invalid config was applied")
	}
	if got := get(); got != "B" {
		t.Fatalf("after rejected reload: %q", got)
	}
}

func TestCertRotation_NewHandshakesSeeTheNewCertificate(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tls ok")) }))
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "first")
	g := startGateway(t, `
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
[[listeners.backends]]
address = "`+be+`"`)
	cn := func() string {
		c, err := tls.Dial("tcp", g.Addr("tls").String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("cn %q", got)
	}
	// A broken pair keeps the old certificate.
	os.WriteFile(cert, []byte("garbage"), 0o644)
	if err := g.ReloadCerts(); err == nil {
		t.Fatal("a broken certificate was accepted")
	}
	if got := cn(); got != "first" {
		t.Fatalf("after failed rotation: cn %q", got)
	}
	writeCert(t, dir, "second")
	if err := g.ReloadCerts(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "second" {
		t.Fatalf("after rotation: cn %q", got)
	}
	// And HTTPS requests flow end to end.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + g.Addr("tls").String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tls ok" {
		t.Fatalf("https body %q", b)
	}
}

func TestAccept_PerIPCapAndInflightShed(t *testing.T) {
	g := startGateway(t, `
[runtime]
per_ip_connection_cap = 2
`+h1Listener("web", `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	addr := g.Addr("web").String()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatal("third connection from one IP was served")
	}
}

func TestAccept_InflightCapSheds503(t *testing.T) {
	g := startGateway(t, `
[runtime]
max_inflight_connections = 100
`+h1Listener("web", `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	addr := g.Addr("web").String()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the in-flight cap: %v %v", resp, err)
	}
}

func TestH1_UnderscorePolicies(t *testing.T) {
	var mu sync.Mutex
	var got []string
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X_User"))
		mu.Unlock()
	}))
	for _, c := range []struct {
		policy string
		status int
		seen   string
	}{{"reject", 400, ""}, {"drop", 200, ""}, {"allow", 200, "alice"}} {
		t.Run(c.policy, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			g := startGateway(t, `
[runtime]
header_underscore_policy = "`+c.policy+`"
`+h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
			conn, err := net.Dial("tcp", g.Addr("web").String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nX_User: alice\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != c.status {
				t.Fatalf("status %v %v, want %d", resp, err, c.status)
			}
			mu.Lock()
			defer mu.Unlock()
			if c.status == 200 && (len(got) != 1 || got[0] != c.seen) {
				t.Fatalf("backend saw X_User %q, want %q", got, c.seen)
			}
		})
	}
}

func TestL4_TCPAndTLSRelayWithHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close() // runs first: ends the accept loop wg waits for
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				// Echo until the client half-closes, then say goodbye.
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("echo:"), b...))
				c.Close()
			})
		}
	})
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "l4")
	g := startGateway(t, `
[[listeners]]
name = "tcp"
address = "127.0.0.1:0"
protocol = "tcp"
[[listeners.backends]]
address = "`+ln.Addr().String()+`"

[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "tls"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
[[listeners.backends]]
address = "`+ln.Addr().String()+`"`)
	c, err := net.Dial("tcp", g.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "echo:hello" {
		t.Fatalf("tcp relay: %q", b)
	}
	tc, err := tls.Dial("tcp", g.Addr("tls").String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte("secret"))
	tc.CloseWrite()
	b, _ = io.ReadAll(tc)
	tc.Close()
	if string(b) != "echo:secret" {
		t.Fatalf("tls relay: %q", b)
	}
	ln.Close()
}

func TestCertRotation_QUICListenerServesTheNewCertificate(t *testing.T) {
	f := newH3Files(t)
	g := startGateway(t, quicListener("h3", f, "", `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	cn := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := quic.DialAddr(ctx, g.Addr("h3").String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}}, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		return c.ConnectionState().TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "gateway" {
		t.Fatalf("cn %q", got)
	}
	writeCert(t, filepath.Dir(f.cert), "rotated")
	if err := g.ReloadCerts(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "rotated" {
		t.Fatalf("after SIGUSR1-style rotation: cn %q", got)
	}
}
