package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/stages/upstream"
)

// logBuf collects a gateway's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines containing s.
func (l *logBuf) lines(s string) []string {
	var out []string
	for _, ln := range strings.Split(l.String(), "\n") {
		if strings.Contains(ln, s) {
			out = append(out, ln)
		}
	}
	return out
}

// startLogged is startGateway with the log kept.
func startLogged(t *testing.T, toml string) (*testGateway, *logBuf) {
	t.Helper()
	cfg := loadConfig(t, toml)
	logs := &logBuf{}
	g, err := New(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	g.SetAccessLogOutput(logs)
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Drain(2 * time.Second)
		cancel()
	})
	return &testGateway{Gateway: g, cancel: cancel}, logs
}

// reloadTo reloads g with toml, as SIGHUP would.
func reloadTo(t *testing.T, g *testGateway, toml string) {
	t.Helper()
	if err := g.Reload(loadConfig(t, toml)); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// rawGet sends one request on c and reads its response.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, path, extra string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp
}

// TestReload_AppliesEveryLiveKeyClassToNewRequests changes each class of
// live key on one running gateway and checks a new request behaves under
// the new value.
func TestReload_AppliesEveryLiveKeyClassToNewRequests(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{} // backend connections seen
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		switch r.URL.Path {
		case "/slow-head":
			time.Sleep(time.Second)
		case "/slow-body":
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
			w.Write([]byte("second"))
			return
		}
		w.Write([]byte("ok"))
	}))
	conns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(remotes)
	}
	mk := func(runtime, http, extra string) string {
		return "[runtime]\n" + runtime + "\n" + h1Listener("web", extra+`
[listeners.http]
`+http+`
[[listeners.backends]]
address = "`+be+`"`)
	}
	g, logs := startLogged(t, mk("", "", ""))
	addr := g.Addr("web").String()
	c := client(t)
	get := func(path string) (*http.Response, string, error) {
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	if resp, _, err := get("/slow-head"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("before: slow head %v %v", resp, err)
	}
	if _, body, err := get("/slow-body"); err != nil || body != "firstsecond" {
		t.Fatalf("before: slow body %q %v", body, err)
	}

	// head_timeout_ms and body_timeout_ms: the backend's delays now pass them.
	reloadTo(t, g, mk("", "head_timeout_ms = 300\nbody_timeout_ms = 300", ""))
	if resp, _, err := get("/slow-head"); err != nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("head_timeout_ms = 300: %v %v, want 504", resp, err)
	}
	if _, body, err := get("/slow-body"); err == nil {
		t.Fatalf("body_timeout_ms = 300: the stalled body came whole (%q)", body)
	}

	// connect_timeout_ms reaches the transports new requests use (a
	// connect that hangs cannot be made on loopback).
	reloadTo(t, g, mk("connect_timeout_ms = 1234", "", ""))
	set := g.listeners[0].proxy.Settings.Load()
	for _, p := range []string{"h1", "h2", "h3"} {
		var got time.Duration
		switch tr := set.Transports[p].(type) {
		case *upstream.H1:
			got = tr.Opts.ConnectTimeout
		case *upstream.H2:
			got = tr.Opts.ConnectTimeout
		case *upstream.H3:
			got = tr.Opts.ConnectTimeout
		}
		if got != 1234*time.Millisecond {
			t.Fatalf("%s transport connect timeout %v after reload", p, got)
		}
	}

	// upstream_*: the pooled connection survives a reload that keeps the
	// backend, and the new pool settings apply to it.
	c.Transport.(*http.Transport).CloseIdleConnections()
	get("/")
	n := conns()
	get("/")
	reloadTo(t, g, mk("connect_timeout_ms = 1234", "", "")) // an unchanged reload keeps the pool
	get("/")
	if conns() != n {
		t.Fatalf("pooled backend connection not reused across a reload: %d → %d", n, conns())
	}
	reloadTo(t, g, mk("upstream_max_age_ms = 1", "", ""))
	time.Sleep(10 * time.Millisecond)
	get("/")
	if conns() != n+1 {
		t.Fatalf("upstream_max_age_ms = 1: the old pooled connection was reused (%d → %d)", n, conns())
	}
	reloadTo(t, g, mk("upstream_idle_timeout_ms = 1", "", ""))
	get("/")
	n = conns()
	time.Sleep(10 * time.Millisecond)
	get("/")
	if conns() != n+1 {
		t.Fatalf("upstream_idle_timeout_ms = 1: the idle pooled connection was reused")
	}
	reloadTo(t, g, mk("upstream_max_idle_per_backend = 0", "", ""))
	get("/")
	n = conns()
	get("/")
	if conns() != n+1 {
		t.Fatalf("upstream_max_idle_per_backend = 0: a connection was kept")
	}

	// header_underscore_policy, max_keepalive_requests, alt_svc,
	// access_log: on a new client connection.
	cn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(cn)
	if r := rawGet(t, cn, br, "/", "X_User: a\r\n"); r.StatusCode != 400 {
		t.Fatalf("default underscore policy: %d", r.StatusCode)
	}
	cn.Close()
	g.access.flush()
	if before := len(logs.lines(`"request_id":"`)); before == 0 {
		t.Fatal("no access lines before access_log = false")
	}
	reloadTo(t, g, `
[observability]
access_log = false
`+mk("header_underscore_policy = \"allow\"\nmax_keepalive_requests = 2", "", `
[listeners.alt_svc]
h3_port = 8443`))
	cn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	br = bufio.NewReader(cn)
	// Requests after the reload have their own path, so a line from before
	// it written late cannot be mistaken for one.
	r := rawGet(t, cn, br, "/after-off", "X_User: a\r\n")
	if r.StatusCode != 200 || r.Close {
		t.Fatalf("allow: %d close=%v", r.StatusCode, r.Close)
	}
	if got := r.Header.Get("Alt-Svc"); !strings.Contains(got, `h3=":8443"`) {
		t.Fatalf("alt_svc after reload: %q", got)
	}
	if r := rawGet(t, cn, br, "/after-off", ""); !r.Close {
		t.Fatal("max_keepalive_requests = 2: the second response kept the connection")
	}
	g.access.flush()
	if after := len(logs.lines(`"path":"/after-off"`)); after != 0 {
		t.Fatalf("access_log = false: %d access lines logged after the reload", after)
	}

	// One summary line per reload; a restart-only change says so.
	reloadTo(t, g, `
[observability]
access_log = false
`+mk("header_underscore_policy = \"allow\"\nmax_keepalive_requests = 2\nhandshake_timeout_ms = 1234", "", `
[listeners.alt_svc]
h3_port = 8443`))
	last := logs.lines("config reloaded")
	line := last[len(last)-1]
	if !strings.Contains(line, `"restart_required":["runtime.handshake_timeout_ms"]`) || !strings.Contains(line, "except changes that need a restart") {
		t.Fatalf("reload summary: %s", line)
	}
	if len(logs.lines("config reloaded")) != 8 {
		t.Fatalf("want one summary line per reload, got:\n%s", strings.Join(logs.lines("config reloaded"), "\n"))
	}
	var scrape bytes.Buffer
	metrics.WritePrometheus(&scrape, false)
	if !strings.Contains(scrape.String(), "expressgateway_config_last_reload_success_timestamp_seconds ") {
		t.Fatal("no config_last_reload_success_timestamp_seconds")
	}
}

// TestReload_AddsRemovesAndMovesListeners: a listener added is bound and
// serves; one removed stops accepting and its in-flight request finishes
// (Connection: close) before it closes; a changed address is both.
func TestReload_AddsRemovesAndMovesListeners(t *testing.T) {
	release := make(chan struct{})
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Write([]byte("done"))
	}))
	web := h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)
	api := func(addr string) string {
		return strings.Replace(h1Listener("api", `
[[listeners.routes]]
direct_response = { status = 200, body = "api" }`), "127.0.0.1:0", addr, 1)
	}
	g := startGateway(t, web)
	webAddr := g.Addr("web").String()

	reloadTo(t, g, web+api("127.0.0.1:0"))
	a := g.Addr("api")
	if a == nil {
		t.Fatal("added listener not bound")
	}
	c := client(t)
	resp, err := c.Get("http://" + a.String() + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("added listener: %v %v", resp, err)
	}
	resp.Body.Close()

	// Remove web with a request in flight on it.
	busy, err := net.Dial("tcp", webAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	reloadTo(t, g, api("127.0.0.1:0"))
	if g.Addr("web") != nil {
		t.Fatal("removed listener still listed")
	}
	if c, err := net.DialTimeout("tcp", webAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("removed listener still accepts")
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight request on the removed listener: %v", err)
	}
	body, _ := io.ReadAll(r.Body)
	if string(body) != "done" || !r.Close {
		t.Fatalf("in-flight on removed: %q close=%v", body, r.Close)
	}

	// Move api: the old address closes, the new one serves.
	oldAPI := g.Addr("api").String()
	reloadTo(t, g, api("127.0.0.2:0"))
	na := g.Addr("api")
	if na == nil || strings.HasPrefix(na.String(), "127.0.0.1:") {
		t.Fatalf("api after the move: %v", na)
	}
	if c, err := net.DialTimeout("tcp", oldAPI, time.Second); err == nil {
		c.Close()
		t.Fatal("the old address still accepts")
	}
	resp, err = c.Get("http://" + na.String() + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("moved listener: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestDrain_PerListenerBudgets: each listener's connections get its own
// drain_timeout_ms.
func TestDrain_PerListenerBudgets(t *testing.T) {
	release := make(chan struct{})
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte("done"))
	}))
	g := startGateway(t, h1Listener("quick", `
drain_timeout_ms = 200
[[listeners.backends]]
address = "`+be+`"`)+h1Listener("patient", `
[[listeners.backends]]
address = "`+be+`"`))
	inflight := func(name string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", g.Addr(name).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		return c, bufio.NewReader(c)
	}
	qc, qbr := inflight("quick")
	pc, pbr := inflight("patient")
	time.Sleep(100 * time.Millisecond)
	drained := make(chan struct{})
	go func() { g.Drain(10 * time.Second); close(drained) }()
	// quick's budget ends long before the backend answers: its request is
	// cut (the connection closes, or a 502 goes out as the upstream
	// exchange is cancelled).
	qc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := http.ReadResponse(qbr, nil); err == nil && r.StatusCode == 200 {
		t.Fatal("quick listener's request outlived its drain budget")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("quick listener's connection was not cut at its drain budget")
	}
	// patient's connection is still there, and its request completes.
	close(release)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(pbr, nil)
	if err != nil {
		t.Fatalf("patient listener's request lost: %v", err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "done" || !r.Close {
		t.Fatalf("patient: %q close=%v", b, r.Close)
	}
	<-drained
}

// TestDrain_JitterSpreadsIdleCloses: idle keep-alive connections close at
// random moments over the jitter, not all at once; 0 closes them at once.
func TestDrain_JitterSpreadsIdleCloses(t *testing.T) {
	for _, c := range []struct {
		jitter   string
		openHalf bool // some connections still open at a quarter of the jitter
	}{{"2000", true}, {"0", false}} {
		t.Run("jitter="+c.jitter, func(t *testing.T) {
			g := startGateway(t, `
[runtime]
drain_jitter_ms = `+c.jitter+"\n"+h1Listener("web", `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
			const n = 20
			closedAt := make(chan time.Duration, n)
			var conns []net.Conn
			for range n {
				cn, err := net.Dial("tcp", g.Addr("web").String())
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, cn)
				rawGet(t, cn, bufio.NewReader(cn), "/", "")
			}
			start := time.Now()
			var wg sync.WaitGroup
			for _, cn := range conns {
				defer cn.Close()
				wg.Go(func() {
					cn.SetReadDeadline(time.Now().Add(5 * time.Second))
					cn.Read(make([]byte, 1))
					closedAt <- time.Since(start)
				})
			}
			drained := make(chan struct{})
			go func() { g.Drain(5 * time.Second); close(drained) }()
			wg.Wait()
			<-drained
			close(closedAt)
			early, last := 0, time.Duration(0)
			for d := range closedAt {
				if d < 500*time.Millisecond {
					early++
				}
				last = max(last, d)
			}
			if c.openHalf && early > n/2 {
				t.Fatalf("jitter 2 s: %d of %d idle connections closed in the first 500 ms", early, n)
			}
			if !c.openHalf && early != n {
				t.Fatalf("jitter 0: only %d of %d idle connections closed at once", early, n)
			}
			if last >= 4*time.Second {
				t.Fatalf("an idle connection outlived the jitter: %v", last)
			}
		})
	}
}

// TestReload_RemovedBackendSeriesAreUnregistered: after a reload drops a
// backend, /metrics has no series of it.
func TestReload_RemovedBackendSeriesAreUnregistered(t *testing.T) {
	a := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("A")) }))
	b := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("B")) }))
	mk := func(bes ...string) string {
		s := `
[[pools]]
name = "gc"
[pools.health_check]
type = "tcp"
`
		for _, be := range bes {
			s += "[[pools.backends]]\naddress = \"" + be + "\"\n"
		}
		return s + h1Listener("gcweb", `pool = "gc"`)
	}
	g := startGateway(t, mk(a, b))
	c := client(t)
	for range 4 {
		resp, err := c.Get(g.url("gcweb") + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	scrape := func() string {
		var s bytes.Buffer
		metrics.WritePrometheus(&s, false)
		return s.String()
	}
	if s := scrape(); !strings.Contains(s, `backend="`+b+`"`) {
		t.Fatalf("no series of %s before the reload", b)
	}
	reloadTo(t, g, mk(a))
	s := scrape()
	for _, ln := range strings.Split(s, "\n") {
		// Only this test's pool and listener: another test's backend may
		// have had the same ephemeral port.
		mine := strings.Contains(ln, `pool="gc"`) || strings.Contains(ln, `listener="gcweb"`)
		if mine && strings.Contains(ln, `backend="`+b+`"`) {
			t.Fatalf("series of the removed backend still exported: %s", ln)
		}
	}
	if !strings.Contains(s, `expressgateway_http_requests_total{listener="gcweb",route="default",backend="`+a+`"`) ||
		!strings.Contains(s, `expressgateway_backend_up{pool="gc",backend="`+a+`"}`) {
		t.Fatalf("the kept backend's series went too:\n%s", s)
	}
}

// TestCertRotation_KeyFileRuleOnReread: the key rule of boot holds on
// SIGUSR1: a rotated key other users can read (0644) is refused and the
// old certificate keeps serving; one only its group can read (0640, as
// root:ssl-cert or a Kubernetes Secret with an fsGroup) is taken.
func TestCertRotation_KeyFileRuleOnReread(t *testing.T) {
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
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`)
	cn := func() string {
		c, err := tls.Dial("tcp", g.Addr("tls").String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	writeCert(t, dir, "second")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	err := g.ReloadCerts()
	if err == nil || !strings.Contains(err.Error(), key+" has mode 0644: other users can read it") || !strings.Contains(err.Error(), "chmod 0640 "+key) {
		t.Fatalf("a 0644 key was accepted, or the error does not say why: %v", err)
	}
	if got := cn(); got != "first" {
		t.Fatalf("after a refused rotation: cn %q", got)
	}
	os.Chmod(key, 0o640)
	if err := g.ReloadCerts(); err != nil {
		t.Fatalf("a 0640 key was refused: %v", err)
	}
	if got := cn(); got != "second" {
		t.Fatalf("after a 0640 rotation: cn %q", got)
	}
}

// TestReload_QUICListenerSettingsApplyToNewConnections: a shorter
// max_idle_timeout_ms makes the gateway close a new idle QUIC connection
// (silently, as QUIC idle timeouts do: the gateway's connection count
// shows it; the client only notices at its own floor of 5 s).
func TestReload_QUICListenerSettingsApplyToNewConnections(t *testing.T) {
	f := newH3Files(t)
	mk := func(q string) string {
		return quicListener("h3", f, q, `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`)
	}
	g := startGateway(t, mk(""))
	idleClosed := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		qc, err := quic.DialAddr(ctx, g.Addr("h3").String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}}, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer qc.CloseWithError(0, "")
		l := g.listeners[0]
		for deadline := time.Now().Add(time.Second); l.conns.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
			if l.conns.Load() == 0 {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	if idleClosed() {
		t.Fatal("default idle timeout closed a connection idle 1.5 s")
	}
	reloadTo(t, g, mk("max_idle_timeout_ms = 300"))
	if !idleClosed() {
		t.Fatal("max_idle_timeout_ms = 300 after reload: an idle connection stayed 1.5 s")
	}
}
